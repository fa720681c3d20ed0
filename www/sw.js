// The service worker: the app's files (precache.js, written by tools/precache.mjs at build time)
// are cached at install and served from the cache, so the app opens with no network. Model
// packages are cached by the engine itself (Cache Storage 'spatial-mllm-packages-v1'), the demo
// model by both. A new build has a new version: its files replace the old cache on activation.
importScripts('./precache.js');
const APP_CACHE = `spatial-mllm-app-${self.PRECACHE.version}`;

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

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(APP_CACHE);
    const hit = await cache.match(req, { ignoreSearch: req.mode === 'navigate' });
    if (hit) return hit;
    try {
      return await fetch(req);
    } catch (e) {
      // Offline and not cached: the app shell for a page, an honest error for anything else.
      if (req.mode === 'navigate') return (await cache.match('./')) ?? Response.error();
      return new Response(`offline, and ${new URL(req.url).pathname} is not in the app's cache`, { status: 503, headers: { 'content-type': 'text/plain' } });
    }
  })());
});
