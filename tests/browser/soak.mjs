// Long sessions in the web app (issue 19): the real page with the bundled demo model, driven as a
// user drives it, through QUESTIONS questions in a row about one video and then VIDEOS videos
// taken and asked about one after another. After every step it reads the engine's own tally from
// the worker (engine.memory(): the buffer pool, the buffers outside it, bind groups, pipelines,
// the wasm memory), the JS heap of the page and of the engine's worker after a forced garbage
// collection (DevTools protocol: HeapProfiler.collectGarbage, Runtime.getHeapUsage) and the page's
// DOM nodes. After the warm-up none may grow past its bound, and every answer must equal the one a
// fresh page's engine gives the same frames and question in a fresh session.
//   node tests/browser/soak.mjs [--questions 4] [--videos 4] [--fresh-every 1]
// (--fresh-every K compares every K-th answer only, for long runs.) Needs www/ assembled
// (tools/assemble-app.sh) and ffmpeg. The short budget runs in the test command; the figures of
// the 200 / 50 run are in the README.
import { launch } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const QUESTIONS = arg('questions', 4);
const VIDEOS = arg('videos', 4);
const FRESH_EVERY = Math.max(1, arg('fresh-every', 1));
const WARMUP_Q = Math.min(10, Math.max(1, Math.floor(QUESTIONS / 4)));
const WARMUP_V = Math.min(3, VIDEOS); // one of each clip
const KIB = 1024;
const MIB = 1024 * KIB;
// Bounds on growth after the warm-up. The page's heap keeps the question log the app shows (one
// entry per question, by design), hence its allowance per step.
const BOUNDS = {
  gpu: 256 * KIB, // the engine's GPU tally, as natively (tests/soak.rs)
  wasm: 1 * MIB, // the wasm linear memory (it only grows)
  worker: 1 * MIB, // the worker's JS heap
  pagePerStep: 8 * KIB, // the page's JS heap, per question asked after the warm-up
  page: 1 * MIB, // and on top of that
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const www = path.join(root, 'www');
for (const need of ['pkg/spatial_mllm_web.js', 'models/demo/model/manifest.json']) {
  if (!fs.existsSync(path.join(www, need))) {
    console.error(`FAILED: www/${need} is missing: run tools/assemble-app.sh (or tools/build-app.sh) first`);
    process.exit(1);
  }
}

// Three clips of different sizes and content: videos cycle through them, so the pool meets new shapes.
const dir = path.join(root, 'target/soak-videos');
fs.mkdirSync(dir, { recursive: true });
const ff = (...a) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...a], { stdio: 'inherit' });
const clips = [['testsrc2', '192x144'], ['smptebars', '160x120'], ['testsrc', '224x168']].map(([src, size], i) => {
  const f = path.join(dir, `clip${i}.webm`);
  ff('-f', 'lavfi', '-i', `${src}=size=${size}:rate=10`, '-frames:v', '12', '-c:v', 'libvpx-vp9', '-b:v', '200k', f);
  return f;
});
const TEMPLATES = [
  (i) => `How many chairs are in this room? (${i})`,
  (i) => `Measuring from the closest point of each object, what is the direct distance between the sofa and the door ${i} (in meters)?`,
  (i) => `If I am standing by the bed and facing the window, is the lamp number ${i} to my left, right, or back?`,
  (i) => `What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size of the combined space. Room ${i}.`,
];
const question = (i) => TEMPLATES[i % TEMPLATES.length](i);

const fail = (msg) => { throw new Error(msg); };
const { server, url } = await serve(www);
const browser = await launch();
let code = 1;

/** A DevTools session on the page, and through it on the page's dedicated worker (the engine's). */
async function devtools(page) {
  const cdp = await page.context().newCDPSession(page);
  const workers = [];
  const pending = new Map();
  let nextId = 1;
  cdp.on('Target.attachedToTarget', (e) => { if (e.targetInfo.type === 'worker') workers.push(e.sessionId); });
  cdp.on('Target.receivedMessageFromTarget', (e) => {
    const m = JSON.parse(e.message);
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(`${m.error.message}`));
    else p.resolve(m.result);
  });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  await cdp.send('Performance.enable');
  const toWorker = (method, params = {}) => new Promise((resolve, reject) => {
    const sessionId = workers.at(-1) ?? fail('the engine worker is not attached');
    const id = nextId++;
    pending.set(id, { resolve, reject });
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) }).catch(reject);
  });
  return {
    async waitWorker() {
      for (let i = 0; i < 100 && !workers.length; i++) await page.waitForTimeout(100);
      if (!workers.length) fail('no worker target appeared');
    },
    /** JS heaps (used bytes) after a full garbage collection, and the DOM's nodes. */
    async heaps() {
      await cdp.send('HeapProfiler.collectGarbage');
      const pageHeap = (await cdp.send('Runtime.getHeapUsage')).usedSize;
      await toWorker('HeapProfiler.collectGarbage');
      const workerHeap = (await toWorker('Runtime.getHeapUsage')).usedSize;
      const metrics = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
      return { pageHeap, workerHeap, nodes: metrics.Nodes, listeners: metrics.JSEventListeners };
    },
  };
}

const idle = (page) => page.waitForFunction(() => window.app && !window.app.state.busy, null, { timeout: 600_000, polling: 100 });

/** Ask through the page's UI; the answer as the log shows it. */
async function ask(page, q) {
  await page.fill('#question', q);
  const before = await page.locator('#log > div').count();
  await page.evaluate(() => { document.getElementById('banner').hidden = true; });
  await page.click('#ask');
  // Done when the new entry has its stats, or failed (the entry says so, or the banner has an error).
  await page.waitForFunction((n) => (document.querySelectorAll('#log > div').length > n
    && (document.querySelector('#log > div .s').textContent !== '' || document.querySelector('#log > div .a').textContent.includes('[failed')))
    || (!document.getElementById('banner').hidden && document.getElementById('banner').className !== 'info'), before, { timeout: 600_000, polling: 100 });
  await idle(page);
  const banner = await page.evaluate(() => { const b = document.getElementById('banner'); return b.hidden || b.className === 'info' ? '' : document.getElementById('banner-text').textContent; });
  if (banner) fail(`the question failed: ${banner}`);
  const answer = await page.evaluate(() => document.querySelector('#log > div .a').textContent);
  if (answer.includes('[failed')) fail(`the question failed: ${answer}`);
  return answer;
}

async function takeClip(page, file) {
  const name = path.basename(file);
  await page.setInputFiles('#file', file);
  await page.waitForFunction((n) => document.getElementById('video-info').textContent.startsWith(`${n}: `), name, { timeout: 60_000 });
  await idle(page);
}

/** The frames the engine encoded for the current video, as base64 (for the fresh page). */
const encodedFrames = (page) => page.evaluate(() => {
  const { rgba, count, width, height } = window.app.state.analysed.frames;
  let s = '';
  for (let i = 0; i < rgba.length; i += 0x8000) s += String.fromCharCode(...rgba.subarray(i, i + 0x8000));
  return { b64: btoa(s), count, width, height };
});

const fmt = (bytes, unit = MIB) => (bytes / unit).toFixed(unit === KIB ? 0 : 2);

try {
  // bypassCSP: waitForFunction evaluates strings, which the app's policy forbids (tests/browser/trust.mjs tests the policy).
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[browser] ${m.text()}`); });
  await page.goto(`${url}/?nosw`);
  await page.waitForFunction(() => window.app !== undefined, null, { timeout: 60_000 });
  const dt = await devtools(page);
  await dt.waitWorker();
  await page.click('#load');
  await page.waitForFunction(() => /Loaded/.test(document.getElementById('device').textContent), null, { timeout: 300_000, polling: 200 });
  await idle(page);
  console.log(`ok: ${await page.locator('#device').innerText()}`);
  // Uniform picks of 2 frames and answers of up to 16 tokens (options added to the page's own
  // selects): many steps on SwiftShader in reasonable time.
  await page.evaluate(() => {
    const add = (id, v) => {
      const s = document.getElementById(id);
      s.append(Object.assign(document.createElement('option'), { textContent: v }));
      s.value = v;
    };
    add('frames', '2');
    add('max-new', '16');
    document.getElementById('sampling').value = 'uniform';
  });
  const maxNew = { encode: await page.evaluate(() => Math.max(...[...document.getElementById('max-new').options].map((o) => Number(o.value)))), ask: 16 };

  const reading = async (label, t0) => ({ label, ms: performance.now() - t0, engine: await page.evaluate(() => window.app.state.engine.memory()), ...(await dt.heaps()) });
  const phases = [];
  const answers = []; // {what, q, clip, answer}
  const framesOf = new Map(); // clip index -> frames encoded

  // --- questions in a row about one video ---
  await takeClip(page, clips[0]);
  let p = { name: `${QUESTIONS} questions in one session`, warmup: WARMUP_Q, readings: [await reading('start', performance.now())] };
  for (let i = 0; i < QUESTIONS; i++) {
    const t0 = performance.now();
    const a = await ask(page, question(i));
    if (i === 0) framesOf.set(0, await encodedFrames(page));
    answers.push({ what: `question ${i}`, q: question(i), clip: 0, answer: a });
    p.readings.push(await reading(`question ${i}`, t0));
    if (i < 3 || (i + 1) % 20 === 0) console.log(`   question ${i + 1}: ${(p.readings.at(-1).ms / 1000).toFixed(1)} s, ${JSON.stringify(a.slice(0, 40))}`);
  }
  phases.push(p);

  // --- videos one after another ---
  p = { name: `${VIDEOS} videos one after another`, warmup: WARMUP_V, readings: [await reading('start', performance.now())] };
  for (let j = 0; j < VIDEOS; j++) {
    const t0 = performance.now();
    await takeClip(page, clips[j % clips.length]);
    const a = await ask(page, question(j));
    if (!framesOf.has(j % clips.length)) framesOf.set(j % clips.length, await encodedFrames(page));
    answers.push({ what: `video ${j}`, q: question(j), clip: j % clips.length, answer: a });
    p.readings.push(await reading(`video ${j}`, t0));
    if (j < 3 || (j + 1) % 10 === 0) console.log(`   video ${j + 1}: ${(p.readings.at(-1).ms / 1000).toFixed(1)} s`);
  }
  phases.push(p);

  // --- the table ---
  const measures = [
    ['engine GPU tally (pool + owned), KiB', (r) => r.engine.pool_bytes + r.engine.owned_bytes, KIB, () => BOUNDS.gpu],
    ['of it: pool kept for reuse, KiB', (r) => r.engine.pooled_bytes, KIB, null],
    ['bind groups cached', (r) => r.engine.bind_groups, 1, null],
    ['pipelines', (r) => r.engine.pipelines, 1, null],
    ['wasm memory, MiB', (r) => r.engine.wasm_bytes, MIB, () => BOUNDS.wasm],
    ['worker JS heap, MiB', (r) => r.workerHeap, MIB, () => BOUNDS.worker],
    ['page JS heap, MiB', (r) => r.pageHeap, MIB, (ph) => BOUNDS.page + BOUNDS.pagePerStep * (ph.readings.length - 1 - ph.warmup)],
    ['page DOM nodes', (r) => r.nodes, 1, null],
  ];
  const failures = [];
  console.log('| phase | measure | start | after warm-up | end | most growth after warm-up | bound |\n|---|---|---|---|---|---|---|');
  for (const ph of phases) {
    const base = ph.readings[Math.min(ph.warmup, ph.readings.length - 1)];
    const after = ph.readings.slice(Math.min(ph.warmup, ph.readings.length - 1));
    for (const [name, f, unit, bound] of measures) {
      const growth = Math.max(0, ...after.map((r) => f(r) - f(base)));
      const b = bound?.(ph);
      const show = (x) => (unit === 1 ? String(x) : fmt(x, unit));
      console.log(`| ${ph.name} (step ${ph.warmup}) | ${name} | ${show(f(ph.readings[0]))} | ${show(f(base))} | ${show(f(ph.readings.at(-1)))} | ${show(growth)} | ${b === undefined ? '-' : show(b)} |`);
      if (b !== undefined && growth > b) failures.push(`${ph.name}: ${name} grew by ${show(growth)} after the warm-up, more than ${show(b)}`);
    }
    const ms = ph.readings.slice(1).map((r) => r.ms);
    console.log(`| ${ph.name} (step ${ph.warmup}) | step ms (first / last) | ${ms[0]?.toFixed(0)} | | ${ms.at(-1)?.toFixed(0)} | | |`);
  }
  await context.close();

  // --- the same frames and questions on a fresh page, each in a fresh session ---
  const fresh = await (await browser.newContext({ bypassCSP: true })).newPage();
  await fresh.goto(`${url}/?nosw`);
  await fresh.waitForFunction(() => window.app !== undefined, null, { timeout: 60_000 });
  await fresh.evaluate(async () => {
    const { createEngine } = await import(new URL('engine/engine.js', location.href).href);
    window.__fresh = createEngine();
    await window.__fresh.load(new URL('models/demo/model', location.href).href); // the worker resolves URLs from its own
  });
  let compared = 0;
  for (const [k, a] of answers.entries()) {
    if (k % FRESH_EVERY !== 0 && k !== answers.length - 1) continue;
    const got = await fresh.evaluate(async ({ f, q, maxNew }) => {
      const bin = atob(f.b64);
      const rgba = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) rgba[i] = bin.charCodeAt(i);
      const e = window.__fresh;
      const video = await e.encode({ rgba, count: f.count, width: f.width, height: f.height }, { maxNew: maxNew.encode });
      const { text } = await e.ask(q, { video, maxNew: maxNew.ask }).result;
      await e.release(video);
      return text;
    }, { f: framesOf.get(a.clip), q: a.q, maxNew });
    compared += 1;
    if (got !== a.answer) failures.push(`${a.what}: the long session answered ${JSON.stringify(a.answer)}, a fresh session ${JSON.stringify(got)}`);
  }
  console.log(`answers equal to a fresh page's (fresh session each): ${compared - failures.filter((f) => f.includes('a fresh session')).length} of ${compared} compared (${answers.length} asked)`);
  if (failures.length) fail(failures.join('\n  '));
  console.log('web app soak: all checks passed');
  code = 0;
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  for (const pg of browser.contexts().flatMap((c) => c.pages())) {
    await pg.screenshot({ path: path.join(root, 'target/soak-failure.png'), fullPage: true }).catch(() => {});
  }
  console.error('(screenshot: target/soak-failure.png)');
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
