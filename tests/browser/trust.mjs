// A page that trusts nothing it renders (issue 19), in headless Chromium on SwiftShader against the
// assembled app (tools/assemble-app.sh), served with its default policy header (tools/serve.sh's):
//  (a) the Content-Security-Policy is in force: no violation while the page loads, loads the demo
//      model and answers; an injected inline script, an inline event handler and eval are refused;
//      the page and its engine worker cannot reach a host the user has not allowed;
//  (b) markup in a reply, a file name, a file's error and a cached hub repository id is shown as text
//      (no element made, no handler run);
//  (c) every request of the page, its engine worker and its service worker goes to the app's
//      origin or the model host the user allowed (and the outside host saw none before that);
//  (d) the service worker's cache holds only the app's own files;
//  (e) a 256-token reply without a space wraps: the page stays as wide as the viewport;
//  (f) the device line is a sentence ("SwiftShader (a CPU software renderer, slow): ...").
// Playwright's waitForFunction evaluates strings, which the policy forbids: waits poll with evaluate.
import { chromium } from 'playwright-core';
// Playwright reports the service worker's own requests only with this set.
process.env.PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS = '1';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { executablePath, webgpuArgs } from './chromium.mjs';
import { serve } from '../../tools/static-server.mjs';
import '../../www/csp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const www = path.join(root, 'www');
for (const need of ['pkg/spatial_mllm_web.js', 'models/demo/model/manifest.json', 'precache.js']) {
  if (!fs.existsSync(path.join(www, need))) {
    console.error(`FAILED: www/${need} is missing: run tools/assemble-app.sh (or tools/build-app.sh) first`);
    process.exit(1);
  }
}
const fail = (msg) => { throw new Error(msg); };
const t0 = Date.now();
const ok = (msg) => console.log(`ok (${((Date.now() - t0) / 1000).toFixed(0)} s): ${msg}`);

// The app, with its default policy header as tools/serve.sh sends it.
const app = await serve(www, 0, '127.0.0.1', { csp: true });
// Another origin: a model host the user may allow (the demo package, CORS open), logging requests.
const outsideLog = [];
const outside = http.createServer((req, res) => {
  outsideLog.push(req.url);
  const file = path.join(www, 'models/demo', path.normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)));
  if (!file.startsWith(path.join(www, 'models/demo')) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404, { 'access-control-allow-origin': '*' }).end();
    return;
  }
  res.writeHead(200, { 'access-control-allow-origin': '*', 'content-type': 'application/octet-stream' }).end(fs.readFileSync(file));
});
const listen = (s) => new Promise((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${s.address().port}`)));
const outsideUrl = await listen(outside);
const outsideSource = AppCsp.hostSource(outsideUrl);

const browser = await chromium.launch({ executablePath, headless: true, args: webgpuArgs });
const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
// Every violation the page sees (an init script runs before the page's own and is not subject to it).
await context.addInitScript(() => {
  window.__violations = [];
  addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
});
// The page's, its engine worker's and (with the variable set at the top) the service worker's requests.
const requests = [];
context.on('request', (r) => requests.push({ url: r.url(), sw: !!r.serviceWorker() }));
const page = await context.newPage();
page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
let code = 1;

async function until(fn, arg, what, timeout = 120_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await page.evaluate(fn, arg).catch(() => null); // a reload in between: try again
    if (v) return v;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}
const violations = () => page.evaluate(() => window.__violations);
const idle = () => until(() => window.app && !window.app.state.busy, null, 'the app to be idle', 300_000);
// No element from outside text: the container has none of these, and no handler ran.
async function noMarkup(sel, literal) {
  const r = await page.evaluate(({ sel, literal }) => {
    const box = document.querySelector(sel);
    return { made: box.querySelectorAll('img, b, script, i').length, text: box.textContent, pwned: window.__pwned ?? null, literal: box.textContent.includes(literal) };
  }, { sel, literal });
  if (r.made || r.pwned !== null || !r.literal) fail(`${sel} parsed markup or lost it: ${JSON.stringify(r)}`);
}

try {
  // --- the first visit (no service worker yet): the default policy; then served by the worker ---
  await page.goto(`${app.url}/`);
  await until(() => window.app && window.__swReady !== undefined, null, 'the app');
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  await until(() => window.app && navigator.serviceWorker.controller, null, 'the page served by the service worker');
  const meta = await page.evaluate(() => document.querySelector('meta[http-equiv="Content-Security-Policy"]').content);
  if (meta !== AppCsp.policy(AppCsp.DEFAULT_HOSTS, 'page')) fail(`the page's policy: ${meta}`);
  ok(`the page's policy: ${meta}`);

  // --- load the demo model, ask a real question: no violation; the device line is a sentence ---
  await page.click('#load');
  await until(() => /Loaded/.test(document.getElementById('device').textContent), null, 'the demo model', 300_000);
  await idle();
  const device = await page.locator('#device').innerText();
  if (!/^Loaded .* on SwiftShader \(a CPU software renderer, slow\): 16-bit floats not available .*subgroups not available\./.test(device)
    || /BrowserWebGpu|f16=|subgroups=|driver/.test(device)) fail(`the device line: ${device}`);
  ok(`(f) ${device}`);
  await page.selectOption('#max-new', '64');
  await page.fill('#question', 'How many chairs are there?');
  await page.click('#ask');
  // The first pieces are enough (SwiftShader is slow): Stop, and the reply so far is the answer.
  await until(() => document.querySelector('#log > div .a')?.textContent.length > 8, null, 'the answer', 300_000);
  await page.click('#stop');
  await until(() => document.querySelector('#log > div .s')?.textContent, null, 'the answer to end', 300_000);
  await idle();
  if ((await violations()).length) fail(`violations during load and a question: ${await violations()}`);
  ok('(a) no policy violation while loading the demo model and answering');

  // --- (a) what the policy refuses: inline script, inline handler, eval, other hosts ---
  const refused = await page.evaluate(async (other) => {
    const s = document.createElement('script');
    s.textContent = 'window.__inline = "script"';
    document.head.append(s);
    const d = document.createElement('div');
    d.setAttribute('onclick', 'window.__inline = "handler"');
    document.body.append(d);
    d.click();
    d.remove();
    // From a task of the page's own: code run by the DevTools protocol is exempt from the policy.
    const evalRefused = await new Promise((resolve) => setTimeout(() => {
      try { eval('1'); resolve(false); } catch (e) { resolve(e instanceof EvalError); }
    }));
    let fetchRefused = false;
    try { await fetch(`${other}/model/manifest.json`); } catch { fetchRefused = true; }
    await new Promise((r) => setTimeout(r, 300)); // violation events are queued as tasks
    return { inline: window.__inline ?? null, evalRefused, fetchRefused, violations: window.__violations.splice(0) };
  }, outsideUrl);
  const directives = refused.violations.map((v) => v.split(' ')[0]);
  if (refused.inline !== null || !refused.evalRefused || !refused.fetchRefused
    || !['script-src-elem', 'script-src-attr', 'script-src', 'connect-src'].every((d) => directives.includes(d))) fail(`not refused: ${JSON.stringify(refused)}`);
  ok(`(a) refused: inline script, inline handler, eval, the page's fetch of ${outsideUrl} (${refused.violations.length} violations)`);
  // The engine worker's own policy (from its script's response): a package on that host fails
  // (after the loader's retries: checked below, while the markup checks run).
  const workerLoad = page.evaluate((u) => window.app.state.engine.load(`${u}/model/`).then(() => 'loaded', (e) => `${e.name}: ${e.message}`), outsideUrl);

  // --- (b) markup in a reply, through the app's answer rendering (the demo's random weights
  //     cannot be made to write markup, so the engine's stream is replaced by one that does) ---
  const markup = '<img src=x onerror="window.__pwned=1"><b>bold</b><script>window.__pwned=2</script>';
  const long = Array.from({ length: 256 }, (_, i) => `tok${i}`).join(''); // 256 tokens, no space
  await page.evaluate(({ markup, long }) => {
    const engine = window.app.state.engine;
    engine.ask = (question) => {
      const pieces = question === 'markup' ? [markup.slice(0, 9), markup.slice(9)] : long.match(/tok\d+/g);
      const text = pieces.join('');
      const stats = { prompt_tokens: 1, prefilled_tokens: 1, prefill_ms: 1, new_tokens: pieces.length, decode_ms: 1 };
      return { async *[Symbol.asyncIterator]() { for (const p of pieces) yield p; }, result: Promise.resolve({ text, stats, stopped: false }) };
    };
  }, { markup, long });
  for (const q of ['markup', `long ${markup}`]) {
    await page.fill('#question', q);
    await page.click('#ask');
    await until((q) => document.querySelector('#log > div .q')?.textContent === q && document.querySelector('#log > div .s')?.textContent, q, 'the fake reply');
    await idle();
  }
  await noMarkup('#log', markup);
  const width = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth, answer: document.querySelector('#log > div .a').textContent.length }));
  if (width.scroll !== width.client || width.answer !== long.length) fail(`the long reply widened the page: ${JSON.stringify(width)}`);
  ok(`(b) a reply and a question with markup shown as text; (e) a ${long.length}-character reply without a space keeps the page ${width.client} px wide`);

  // --- (b) a file name with markup, dropped on the page: a video, then not a video ---
  const sample = fs.readFileSync(path.join(www, 'samples/room.webm')).toString('base64');
  const name = '<img src=x onerror="window.__pwned=3"><b>room</b>.webm';
  for (const [bytes, what] of [[sample, 'video'], ['bm90IGEgdmlkZW8=', 'not a video']]) {
    await page.evaluate(({ bytes, name }) => {
      const data = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([data], name, { type: 'video/webm' }));
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, { bytes, name });
    await until((n) => document.getElementById('video-info').textContent.startsWith(n) && !/opening/.test(document.getElementById('video-info').textContent), name, `the ${what}`);
    await idle();
    await noMarkup('#video-info', name);
    await noMarkup('#banner', '');
  }
  if ((await violations()).length) fail(`violations while opening files: ${await violations()}`);
  const info = await page.locator('#video-info').innerText();
  ok(`(b) a file name with markup shown as text (${info.slice(name.length, name.length + 40)}…)`);

  // --- (b) a hub repository id with markup in the Downloaded models list ---
  const repo = '<img src=x onerror="window.__pwned=4">/<i>name'; // owner / name
  await page.evaluate(async (repo) => {
    const cache = await caches.open('spatial-mllm-packages-v1');
    const id = repo.split('/').map(encodeURIComponent).join('/');
    await cache.put(`https://huggingface.co/${id}/resolve/0123456789abcdef/.spatial-mllm/manifest.json`, new Response('{}'));
    document.getElementById('cache-panel').open = true;
    document.getElementById('cache-refresh').click();
  }, repo);
  await until((r) => document.getElementById('cache-table').textContent.includes(r), repo, 'the cache list');
  await noMarkup('#cache-table', repo);
  await page.evaluate(async () => {
    const cache = await caches.open('spatial-mllm-packages-v1');
    for (const k of await cache.keys()) if (k.url.startsWith('https://huggingface.co/')) await cache.delete(k);
  });
  ok('(b) a repository id with markup shown as text in the cache list');
  const refusedLoad = await workerLoad;
  if (refusedLoad === 'loaded' || outsideLog.length) fail(`the engine worker reached a host not allowed: ${refusedLoad}; ${outsideLog}`);
  ok(`(a) the engine worker could not reach ${outsideUrl} either (${refusedLoad.slice(0, 70)}…)`);

  // --- a package on another host: asked first, nothing requested; allowed: the page reloads with
  //     the host in its policy and the model loads from there ---
  await page.check('input[name=model][value=custom]');
  await page.fill('#model-url', `${outsideUrl}/model/`);
  await page.fill('#sampler-url', '');
  await page.click('#check');
  const allow = page.locator('#capability button', { hasText: 'and reload' });
  await allow.waitFor({ timeout: 30_000 });
  if (outsideLog.length) fail(`requests before the host was allowed: ${outsideLog}`);
  await Promise.all([page.waitForEvent('load'), allow.click()]);
  await until(() => window.app && navigator.serviceWorker.controller, null, 'the reloaded page');
  const widened = await page.evaluate(() => document.querySelector('meta[http-equiv="Content-Security-Policy"]').content);
  if (widened !== AppCsp.policy([...AppCsp.DEFAULT_HOSTS, outsideSource], 'page')) fail(`the policy after allowing ${outsideSource}: ${widened}`);
  // The panel is filled once the page has read the stored hosts (after its other start-up steps).
  await until((src) => document.getElementById('hosts-list').textContent.includes(src), outsideSource, `the hosts panel listing ${outsideSource}`, 30_000);
  await page.click('#load');
  await until(() => /Loaded/.test(document.getElementById('device').textContent), null, 'the model from the allowed host', 300_000);
  await idle();
  if (!outsideLog.includes('/model/manifest.json') || (await violations()).length) fail(`loading from the allowed host: ${outsideLog} ${await violations()}`);
  ok(`(a) ${outsideSource} was asked for, allowed, put in the policy and the model loaded from it (${outsideLog.length} requests there)`);
  // A video decoded (WebCodecs) and its thumbnails drawn under the policy (the encoding that
  // follows is the engine's, minutes on SwiftShader: the test goes on meanwhile).
  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0))], 'room.webm', { type: 'video/webm' }));
    document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, sample);
  await idle();
  await page.selectOption('#frames', '8');
  await page.click('#analyse');
  await until(() => document.querySelectorAll('#thumbs canvas').length === 8, null, 'the thumbnails', 300_000);
  const thumbs = await page.locator('#thumbs canvas').count();
  if (thumbs !== 8 || (await violations()).length) fail(`analysing a video: ${thumbs} thumbnails, violations ${await violations()}`);
  ok(`(a) a video decoded and ${thumbs} thumbnails drawn with no policy violation`);

  // --- (c) every request went to the app's origin or the allowed model host ---
  const stray = requests.map((r) => r.url).filter((u) => !u.startsWith(`${app.url}/`) && !u.startsWith(`${outsideUrl}/`));
  const bySw = requests.filter((r) => r.sw).length;
  if (stray.length || !bySw) fail(`requests elsewhere: ${stray.join(', ')} (${bySw} from the service worker)`);
  ok(`(c) ${requests.length} requests (${bySw} by the service worker), all to ${app.url} or ${outsideUrl}`);

  // --- (d) the service worker's cache: the app's own files only ---
  const cached = await page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) out[name] = (await (await caches.open(name)).keys()).map((r) => r.url);
    return out;
  });
  const appCaches = Object.keys(cached).filter((n) => n.startsWith('spatial-mllm-app-'));
  const precache = await (await fetch(`${app.url}/precache.js`)).text();
  const files = JSON.parse(precache.slice(precache.indexOf('{'), precache.lastIndexOf('}') + 1)).files.map((f) => new URL(f, `${app.url}/`).href);
  if (appCaches.length !== 1) fail(`app caches: ${appCaches}`);
  const appFiles = cached[appCaches[0]];
  const foreign = appFiles.filter((u) => !files.includes(u));
  if (foreign.length || appFiles.length !== files.length) fail(`the service worker's cache: ${foreign.join(', ') || `${appFiles.length} of ${files.length} files`}`);
  if (Object.values(cached).flat().some((u) => !u.startsWith(`${app.url}/`) && !u.startsWith(`${outsideUrl}/`))) fail(`a cache holds another origin: ${JSON.stringify(cached)}`);
  ok(`(d) the service worker's cache holds the app's ${appFiles.length} files and nothing else (the package from ${outsideSource} is in the engine's package cache)`);

  // --- the self-test page: its own policy, WebAssembly in the page, no violation ---
  await page.goto(`${app.url}/selftest.html`);
  await until(() => !/checking/.test(document.getElementById('gpu').textContent), null, 'the self-test page');
  const gpu = await page.locator('#gpu').innerText();
  if (/No usable|could not/.test(gpu) || (await violations()).length) fail(`self-test page: ${gpu} ${await violations()}`);
  // The device reads as the app's sentence, not as the engine's debug summary.
  if (!/^SwiftShader \(a CPU software renderer, slow\): 16-bit floats (not )?available/.test(gpu) || /BrowserWebGpu|f16=/.test(gpu)) fail(`the self-test page's device line: "${gpu}"`);
  ok(`the self-test page runs under its policy and names the device as a sentence ("${gpu}")`);

  console.log(`trust: all checks passed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  code = 0;
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  await page.screenshot({ path: path.join(root, 'target/trust-failure.png') }).catch(() => {});
} finally {
  await browser.close();
  app.server.close();
  outside.close();
}
process.exit(code);
