// The app's Content-Security-Policy, built in one place for the page (index.html's meta tag holds
// the default), the service worker (which serves the app's pages and its engine worker with the
// policy built from the model hosts the user chose) and tools/static-server.mjs. A classic script
// (the service worker loads it with importScripts; modules import it for its side effect): it
// defines `globalThis.AppCsp`.
(() => {
  // The Hugging Face hub and the hosts its downloads redirect to (cdn-lfs*.hf.co,
  // cas-bridge.xethub.hf.co, ...): the catalogue's models come from there.
  const DEFAULT_HOSTS = ['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co'];
  const SETTINGS_CACHE = 'spatial-mllm-settings';
  const HOSTS_FILE = 'settings/model-hosts.json';
  // A host source as CSP writes it: scheme, host (a leading `*.` for its subdomains), port. Nothing
  // else may reach the policy (no quotes, spaces, semicolons or paths).
  const SOURCE = /^(https?):\/\/(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::(\d{1,5}|\*))?$/;

  /** `text` (an address, `host`, `host:port` or `https://*.domain`) as a host source, or null. */
  function hostSource(text) {
    let t = String(text ?? '').trim().toLowerCase();
    if (!t) return null;
    if (!/^[a-z][a-z0-9+.-]*:\/\//.test(t)) t = `https://${t}`;
    const wild = t.replace('://*.', '://wildcard-marker.');
    let u;
    try {
      u = new URL(wild);
    } catch {
      return null;
    }
    if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username || u.password) return null;
    const host = u.host.replace(/^wildcard-marker\./, '*.');
    const src = `${u.protocol}//${host}`;
    return SOURCE.test(src) ? src : null;
  }

  /** Whether `url` (a string or URL) is matched by one of `sources` (host sources as above). */
  function allows(sources, url) {
    let u;
    try {
      u = new URL(url);
    } catch {
      return false;
    }
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    return sources.some((s) => {
      const m = SOURCE.exec(s);
      if (!m || `${m[1]}:` !== u.protocol) return false;
      const host = u.hostname;
      const hostOk = m[2] ? host.endsWith(`.${m[3]}`) : host === m[3];
      const want = m[4] ?? (m[1] === 'https' ? '443' : '80');
      return hostOk && (want === '*' || want === port);
    });
  }

  /** The policy for the app's pages (`kind` 'page'), the self-test page ('selftest': it runs the
   * engine's test build in the page) and the engine worker ('worker'): only the app's own scripts
   * (WebAssembly where the engine runs), workers from the app's origin, connections to the app's
   * origin and `hosts`, images and styles from the app only, no plugins, forms, frames or <base>. */
  function policy(hosts = DEFAULT_HOSTS, kind = 'page') {
    const wasm = kind === 'page' ? '' : " 'wasm-unsafe-eval'";
    return [
      "default-src 'self'",
      `script-src 'self'${wasm}`,
      "worker-src 'self'",
      `connect-src 'self'${hosts.length ? ` ${hosts.join(' ')}` : ''}`,
      "img-src 'self'",
      "style-src 'self'",
      "object-src 'none'",
      "frame-src 'none'",
      "base-uri 'none'",
      "form-action 'none'",
    ].join('; ');
  }

  /** The connect-src host sources of a policy text (what the page may connect to besides itself). */
  function hostsOf(policyText) {
    const d = String(policyText).split(';').map((s) => s.trim().split(/\s+/)).find((p) => p[0] === 'connect-src');
    return d ? d.slice(1).filter((s) => SOURCE.test(s)) : [];
  }

  /** The chosen hosts kept in Cache Storage (the service worker cannot read localStorage); the
   * default set until the user changes it. `base`: the app's folder URL. */
  async function storedHosts(base) {
    try {
      const res = await (await caches.open(SETTINGS_CACHE)).match(new URL(HOSTS_FILE, base).href);
      const list = res ? await res.json() : null;
      if (Array.isArray(list)) return list.map(hostSource).filter(Boolean);
    } catch {
      /* no storage or a damaged entry: the defaults */
    }
    return DEFAULT_HOSTS.slice();
  }

  async function saveHosts(base, hosts) {
    const list = [...new Set(hosts.map(hostSource).filter(Boolean))];
    const cache = await caches.open(SETTINGS_CACHE);
    await cache.put(new URL(HOSTS_FILE, base).href, new Response(JSON.stringify(list), { headers: { 'content-type': 'application/json' } }));
    return list;
  }

  globalThis.AppCsp = { DEFAULT_HOSTS, hostSource, allows, policy, hostsOf, storedHosts, saveHosts };
})();
