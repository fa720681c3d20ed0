// The service worker: the app's files (precache.js, written by tools/precache.mjs at build time)
// are cached at install and served from the cache, so the app opens with no network. It caches
// nothing else: model packages are cached by the engine itself (Cache Storage
// 'spatial-mllm-packages-v1'; the demo model is also one of the app's files), and requests to other
// origins never pass through here. A new build has a new version: its files replace the old cache
// on activation.
//
// It also gives the app's pages and its engine worker their Content-Security-Policy (csp.js), with
// connect-src listing the model hosts the user chose (kept in Cache Storage by www/hosts.js): a
// page's <meta> policy is rewritten (policies only ever narrow, so the meta tag's default could not
// be widened by a header), and a worker script gets it as a header (a worker's policy comes from
// its script's response, never from the page's meta tag).
importScripts('./precache.js', './csp.js');
const APP_CACHE = `spatial-mllm-app-${self.PRECACHE.version}`;
const SCOPE = self.registration.scope;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(APP_CACHE);
    // `reload` bypasses the HTTP cache so a new version never stores stale files.
    await cache.addAll(self.PRECACHE.files.map((f) => new Request(f, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('spatial-mllm-app-') && name !== APP_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

/** The hosts a page at `pageUrl` may connect to: the chosen ones, and the hub address its own
 * `?hub=` names (how tests and mirrors are set; the page shows it as fixed by its address). */
async function hostsFor(pageUrl) {
  const hosts = await AppCsp.storedHosts(SCOPE);
  let extra = null;
  try {
    const hub = new URL(pageUrl).searchParams.get('hub');
    if (hub) extra = AppCsp.hostSource(new URL(/^[a-z][a-z0-9+.-]*:/i.test(hub) ? hub : `https://${hub}`).origin);
  } catch { /* no page, or no usable address: the chosen hosts only */ }
  return extra && !hosts.includes(extra) ? [...hosts, extra] : hosts;
}

const META = /<meta http-equiv="Content-Security-Policy" content="[^"]*">/i;

/** `res` (a page or the engine worker's script) with the policy for `hosts`. */
async function withPolicy(res, kind, hosts) {
  const policy = AppCsp.policy(hosts, kind);
  const headers = new Headers({ 'content-type': res.headers.get('content-type') ?? 'text/plain', 'content-security-policy': policy });
  if (kind === 'worker') return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  const html = (await res.text()).replace(META, `<meta http-equiv="Content-Security-Policy" content="${policy}">`);
  return new Response(html, { status: res.status, statusText: res.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(APP_CACHE);
    let res = await cache.match(req, { ignoreSearch: req.mode === 'navigate' });
    if (!res) {
      try {
        res = await fetch(req);
      } catch (e) {
        // Offline and not cached: the app shell for a page, an honest error for anything else.
        if (req.mode === 'navigate') res = (await cache.match('./')) ?? Response.error();
        else return new Response(`offline, and ${new URL(req.url).pathname} is not in the app's cache`, { status: 503, headers: { 'content-type': 'text/plain' } });
      }
    }
    if (!res.ok) return res;
    if (req.mode === 'navigate' && /html/.test(res.headers.get('content-type') ?? '')) {
      // The self-test page connects to nothing but this site.
      const selftest = new URL(req.url).pathname.endsWith('/selftest.html');
      return withPolicy(res, selftest ? 'selftest' : 'page', selftest ? [] : await hostsFor(req.url));
    }
    if (req.destination === 'worker' || req.destination === 'sharedworker') {
      const client = event.clientId ? await self.clients.get(event.clientId) : null;
      return withPolicy(res, 'worker', await hostsFor(client?.url));
    }
    return res;
  })());
});
