// A tiny static file server for the browser tests and the local app (no dependencies).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import '../www/csp.js'; // globalThis.AppCsp: the app's Content-Security-Policy

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.css': 'text/css',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.webmanifest': 'application/manifest+json',
};

/** The app's default policy for a file (`csp` option): its pages, and its engine worker (whose
 * policy comes from its script's response, never from the page's meta tag). */
function cspFor(rel) {
  if (rel.endsWith('/selftest.html')) return AppCsp.policy([], 'selftest');
  if (rel.endsWith('.html') || rel.endsWith('/')) return AppCsp.policy(AppCsp.DEFAULT_HOSTS, 'page');
  if (rel.endsWith('/engine/worker.js')) return AppCsp.policy(AppCsp.DEFAULT_HOSTS, 'worker');
  return null;
}

/**
 * Serve `root` on 127.0.0.1:`port` (0 = any free port). Supports single `Range: bytes=a-[b]`
 * requests (206). Resolves to {server, url, requests, faults, chaos}: `requests` logs {path, range};
 * `faults` maps a path to a test fault for its next full response: {cutAfter: n} sends n bytes and
 * drops the connection (an interrupted download), {status: s} answers with HTTP status s.
 * `chaos` holds faults over many requests, for tests only (all off by default):
 *   chaos.drop = {prefix, rate, random}: each answer (200 or 206) under `prefix` is cut, with
 *     probability `rate`, at an offset drawn from `random()` (a seeded generator: the test prints
 *     its seed), and the connection destroyed; each cut is logged in chaos.cuts as {path, at, of};
 *   chaos.delay = {prefix, ms}: answers under `prefix` start only after `ms` (a slow download).
 * `csp`: send the app's default Content-Security-Policy (www/csp.js) with its pages and its engine
 * worker (tools/serve.sh; the service worker replaces it with the policy of the chosen hosts).
 */
export function serve(root, port = 0, host = '127.0.0.1', { csp = false } = {}) {
  root = path.resolve(root);
  const requests = [];
  const faults = new Map();
  const chaos = { drop: null, delay: null, cuts: [] };
  const under = (rule, p) => rule && p.startsWith(rule.prefix);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push({ path: url.pathname, range: req.headers.range ?? null });
    let rel;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request');
      return;
    }
    let file = path.normalize(path.join(root, rel));
    if (file !== root && !file.startsWith(root + path.sep)) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden');
      return;
    }
    if (faults.get(url.pathname)?.status) {
      const { status } = faults.get(url.pathname);
      faults.delete(url.pathname);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`injected ${status}`);
      return;
    }
    if (under(chaos.delay, url.pathname)) await new Promise((r) => setTimeout(r, chaos.delay.ms));
    // Sends `body` whole, or cut at a random offset when chaos.drop says so.
    const send = (body) => {
      if (!under(chaos.drop, url.pathname) || body.length === 0 || chaos.drop.random() >= chaos.drop.rate) return res.end(body);
      const at = Math.floor(chaos.drop.random() * body.length);
      chaos.cuts.push({ path: url.pathname, range: req.headers.range ?? null, at, of: body.length });
      res.write(body.subarray(0, at), () => setTimeout(() => res.socket?.destroy(), 20));
    };
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${url.pathname}`);
        return;
      }
      const type = MIME[path.extname(file)] ?? 'application/octet-stream';
      const headers = { 'content-type': type, 'cache-control': 'no-store', 'accept-ranges': 'bytes' };
      const policy = csp && cspFor(url.pathname);
      if (policy) headers['content-security-policy'] = policy;
      const fault = faults.get(url.pathname);
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (m) {
        const start = Number(m[1]);
        const end = m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
        if (start >= data.length) {
          res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
          return;
        }
        res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${data.length}`, 'content-length': end - start + 1 });
        send(data.subarray(start, end + 1));
        return;
      }
      if (fault?.cutAfter !== undefined) {
        faults.delete(url.pathname);
        res.writeHead(200, { ...headers, 'content-length': data.length });
        res.write(data.subarray(0, fault.cutAfter), () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': data.length });
      send(data);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      resolve({ server, url: `http://${host}:${p}`, requests, faults, chaos });
    });
  });
}
