// The web app end to end in headless Chromium on SwiftShader's WebGPU: open the page, load the
// bundled tiny demo model, ask a question with no video (text-only), give it a short generated
// video, ask a question and see the answer
// stream, see the 3D view render (a screenshot that is not blank), ask again without encoding the
// video again, stop a reply, survive a lost GPU device and a crashed worker, then go offline,
// reload, and answer from the caches with no network request. Also the error paths a test can
// provoke: a file that is not a video, a codec Chromium cannot decode, a browser without WebGPU,
// a hidden tab; and a one-frame video, which is answered as the CLI does (the frame repeated).
// Needs www/ assembled (tools/assemble-app.sh) and ffmpeg.
import { launch } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const www = path.join(root, 'www');
for (const need of ['pkg/spatial_mllm_web.js', 'models/demo/model/manifest.json', 'precache.js']) {
  if (!fs.existsSync(path.join(www, need))) {
    console.error(`FAILED: www/${need} is missing: run tools/assemble-app.sh (or tools/build-app.sh) first`);
    process.exit(1);
  }
}

// Test videos: a short room-like clip, a one-frame clip, an HEVC clip, a text file named .mp4.
const dir = path.join(root, 'target/app-test-videos');
fs.mkdirSync(dir, { recursive: true });
const ff = (...a) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...a], { stdio: 'inherit' });
const clip = path.join(dir, 'room.webm');
// 16 frames: the fast sampler's candidates are then all 16 (SwiftShader runs VGGT slowly).
ff('-f', 'lavfi', '-i', 'testsrc2=size=192x144:rate=10', '-frames:v', '16', '-c:v', 'libvpx-vp9', '-b:v', '300k', clip);
const still = path.join(dir, 'still.webm');
ff('-f', 'lavfi', '-i', 'testsrc2=size=192x144:rate=10', '-frames:v', '1', '-c:v', 'libvpx', still);
const hevc = path.join(dir, 'hevc.mp4');
let haveHevc = true;
try { ff('-f', 'lavfi', '-i', 'testsrc2=size=192x144:rate=10', '-t', '1', '-c:v', 'libx265', '-tag:v', 'hvc1', hevc); } catch { haveHevc = false; }
const notVideo = path.join(dir, 'notes.mp4');
fs.writeFileSync(notVideo, 'these are my notes, not a video\n'.repeat(20));

const fail = (msg) => { throw new Error(msg); };
const { server, url, requests } = await serve(www);
const browser = await launch({ canvas: true });
// bypassCSP: waitForFunction evaluates strings, which the app's policy forbids (tests/browser/trust.mjs tests the policy).
const context = await browser.newContext({ viewport: { width: 1100, height: 1400 }, bypassCSP: true });
const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error') console.log(`[browser] ${m.text()}`); });
page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
let code = 1;

const text = (sel) => page.locator(sel).innerText();
const bannerText = async () => ((await page.locator('#banner').isHidden()) ? '' : text('#banner-text'));
async function waitBanner(re, timeout = 60_000) {
  await page.waitForFunction((src) => {
    const b = document.getElementById('banner');
    return !b.hidden && new RegExp(src).test(document.getElementById('banner-text').textContent);
  }, re.source, { timeout, polling: 200 });
  return bannerText();
}
const idle = (timeout = 600_000) => page.waitForFunction(() => window.app && !window.app.state.busy, null, { timeout, polling: 200 });
async function ask(question, { stop = false } = {}) {
  await page.fill('#question', question);
  const before = await page.locator('#log > div').count();
  // Count how often the answer text changes while it streams.
  await page.evaluate(() => {
    window.__updates = 0;
    window.__obs?.disconnect();
    window.__obs = new MutationObserver(() => { window.__updates += 1; });
    window.__obs.observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });
  });
  if (stop) {
    // Press Stop as soon as the first piece of the new answer shows (in the page: no round trip).
    await page.evaluate((n) => {
      window.__stopClicked = false;
      const obs = new MutationObserver(() => {
        if (document.querySelectorAll('#log > div').length > n && document.querySelector('#log > div .a').textContent.length > 0) {
          obs.disconnect();
          window.__stopClicked = !document.getElementById('stop').disabled;
          document.getElementById('stop').click();
        }
      });
      obs.observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });
    }, before);
  }
  await page.click('#ask');
  await page.waitForFunction((n) => document.querySelectorAll('#log > div').length > n && document.querySelector('#log > div .s').textContent !== '' || document.querySelector('#log > div .a')?.textContent.includes('[failed'), before, { timeout: 600_000, polling: 200 });
  await idle();
  const r = await page.evaluate(() => ({ answer: document.querySelector('#log > div .a').textContent, stats: document.querySelector('#log > div .s').textContent, updates: window.__updates }));
  if (r.answer.includes('[failed')) fail(`the question failed: ${r.answer}`);
  return r;
}

try {
  // --- a browser without WebGPU: a clear message, nothing runs ---
  {
    const p = await context.newPage();
    await p.addInitScript(() => { delete Navigator.prototype.gpu; delete WorkerNavigator.prototype.gpu; });
    await p.goto(`${url}/?nosw`);
    await p.waitForFunction(() => !document.getElementById('banner').hidden, null, { timeout: 30_000 });
    const b = await p.locator('#banner-text').innerText();
    if (!/no WebGPU/.test(b)) fail(`no WebGPU message, got: ${b}`);
    await p.click('#check');
    await p.waitForFunction(() => /cannot run/.test(document.getElementById('capability').textContent), null, { timeout: 30_000 });
    console.log('ok: without WebGPU the page says so and the check says it cannot run');
    await p.close();
  }

  await page.goto(`${url}/`);
  await page.waitForFunction(() => window.app && window.__swReady !== undefined, null, { timeout: 60_000 });
  await page.evaluate(() => navigator.serviceWorker.ready);

  // --- load the demo model: the capability check runs first, progress shows ---
  await page.click('#load');
  await page.waitForFunction(() => /Loaded/.test(document.getElementById('device').textContent), null, { timeout: 300_000, polling: 200 });
  await idle();
  const cap = await text('#capability');
  if (!/can run it/.test(cap)) fail(`capability verdict: ${cap}`);
  console.log(`ok: demo model loaded: ${await text('#device')}`);
  console.log(`   capability: ${cap.replace(/\n/g, ' | ')}`);

  // --- a model and no video: Ask runs a text-only question ---
  {
    const t = await ask('What is two plus two?');
    const textOnly = await page.evaluate(() => window.app.state.analysed?.textOnly === true);
    if (!textOnly || !/conversation's cache/.test(t.stats)) fail(`a question without a video did not run text-only: ${JSON.stringify(t)}`);
    console.log(`ok: without a video the question is answered text-only: ${JSON.stringify(t.answer)} (${t.stats})`);
  }

  // --- bad videos: clear messages, the app keeps working ---
  async function badFile(file, re) {
    await page.evaluate(() => { document.getElementById('banner').hidden = true; });
    await page.setInputFiles('#file', file);
    const b = await waitBanner(re);
    await idle();
    return b;
  }
  console.log(`ok: not a video -> ${await badFile(notVideo, /not a video/i)}`);
  if (haveHevc) console.log(`ok: HEVC -> ${await badFile(hevc, /cannot decode/i)}`);
  await page.evaluate(() => { document.getElementById('banner').hidden = true; });
  await page.setInputFiles('#file', still);
  await page.waitForFunction(() => /still\.webm: /.test(document.getElementById('video-info').textContent), null, { timeout: 60_000 });
  await idle();
  await page.click('#analyse');
  await page.waitForFunction(() => /1 frame encoded/.test(document.getElementById('video-info').textContent), null, { timeout: 300_000, polling: 200 });
  await idle();
  console.log(`ok: one-frame video -> ${await text('#video-info')}`);

  // --- the real path: a short video, a question, a streamed answer, the 3D view ---
  await page.evaluate(() => { document.getElementById('banner').hidden = true; });
  await page.setInputFiles('#file', clip);
  await page.waitForFunction(() => /16 frames/.test(document.getElementById('video-info').textContent), null, { timeout: 60_000 });
  await idle();
  await page.selectOption('#max-new', '64');
  await page.selectOption('#frames', '8');
  const first = await ask('How many chairs are in this room?');
  if (!first.answer.trim()) fail('empty answer');
  if (first.updates < 3) fail(`the answer did not stream (${first.updates} updates)`);
  console.log(`ok: answer streamed in ${first.updates} updates: ${JSON.stringify(first.answer.slice(0, 80))}`);
  console.log(`   ${first.stats}`);
  const thumbs = await page.locator('#thumbs figure').count();
  if (thumbs !== 8) fail(`expected 8 thumbnails, got ${thumbs}`);
  const stageText = await text('#stages');
  for (const s of ['decoding frames', 'sampling: VGGT', 'preprocessing', 'ViT', 'VGGT', 'connector', 'prefill', 'answer']) {
    if (!stageText.includes(s)) fail(`stage ${s} was not shown: ${stageText}`);
  }
  console.log(`ok: stages: ${stageText.replace(/\n/g, ' | ')}`);
  await page.waitForFunction(() => window.__viewRendered === true, null, { timeout: 60_000 });
  await page.waitForTimeout(500);
  const shot = await page.locator('#view3d').screenshot({ path: path.join(root, 'target/app-view3d.png') });
  const pixels = await page.evaluate(async (b64) => {
    const bmp = await createImageBitmap(await (await fetch(`data:image/png;base64,${b64}`)).blob());
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext('2d');
    g.drawImage(bmp, 0, 0);
    const d = g.getImageData(0, 0, bmp.width, bmp.height).data;
    const colours = new Set();
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) {
      colours.add((d[i] >> 3) << 10 | (d[i + 1] >> 3) << 5 | (d[i + 2] >> 3));
      if (Math.abs(d[i] - 17) + Math.abs(d[i + 1] - 17) + Math.abs(d[i + 2] - 17) > 30) lit += 1;
    }
    return { colours: colours.size, lit: lit / (d.length / 4) };
  }, shot.toString('base64'));
  if (pixels.colours < 20 || pixels.lit < 0.01) fail(`the 3D view looks blank: ${JSON.stringify(pixels)}`);
  console.log(`ok: 3D view rendered (${pixels.colours} colours, ${(pixels.lit * 100).toFixed(1)} % lit; target/app-view3d.png)`);

  // --- a second question reuses the encoded video and its prompt prefix ---
  const stagesBefore = await text('#stages');
  const second = await ask('What is the size of this room (in square meters)?');
  const m = /(\d+) prompt tokens \((\d+) prefilled/.exec(second.stats);
  if (!m || Number(m[2]) >= Number(m[1])) fail(`the second question did not reuse the video's cache: ${second.stats}`);
  if ((await text('#stages')).includes('sampling: VGGT') && !stagesBefore.includes('sampling')) fail('the video was encoded again');
  console.log(`ok: second question: ${second.stats}`);

  // --- stop a reply ---
  await page.selectOption('#max-new', '1024');
  const stopped = await ask('How many chairs are in this room?', { stop: true });
  if (!(await page.evaluate(() => window.__stopClicked))) fail('the Stop button was not enabled while the answer streamed');
  if (!(await page.locator('#log > div .a').first().getAttribute('class')).includes('stopped')) fail('the stopped answer is not marked as stopped');
  const n = Number(/; (\d+) tokens at/.exec(stopped.stats)?.[1]);
  if (!(n < 1024)) fail(`stop did not end the reply early: ${stopped.stats}`);
  console.log(`ok: stopped after ${n} tokens`);
  await page.selectOption('#max-new', '64');

  // --- a hidden tab while working ---
  await page.fill('#question', 'How many tables are there?');
  await page.click('#ask');
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { value: true, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await idle();
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { value: false, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  console.log(`ok: hidden tab -> ${await waitBanner(/background/)}`);

  // --- a lost GPU device: recovered, said so, and the next question answers ---
  await page.evaluate(() => window.app.loseDevice());
  const afterLoss = await ask('How far is the sofa from the door?');
  console.log(`ok: device lost -> ${await waitBanner(/Recovered/)}; then answered ${JSON.stringify(afterLoss.answer.slice(0, 40))}`);
  if ((await page.evaluate(() => window.app.state.recoveries)) < 1) fail('no recovery was recorded');

  // --- a crashed worker: recovered on its own, the next question answers ---
  await page.evaluate(() => { window.__rec = window.app.state.recoveries; return window.app.crashWorker(); });
  await page.waitForFunction(() => window.app.state.recoveries > window.__rec && !window.app.state.recovering, null, { timeout: 300_000, polling: 200 });
  await waitBanner(/Recovered/);
  await ask('Which object appears first?');
  console.log('ok: crashed worker -> restarted, reloaded and answered');

  // --- out of GPU memory: a GPU whose binding limit is far too small for this work (planned with
  // ?maxBinding) gets a clear message that suggests fewer frames, and nothing breaks ---
  {
    const p = await context.newPage();
    await p.goto(`${url}/?maxBinding=1000000`);
    await p.click('#load');
    await p.waitForFunction(() => /Loaded/.test(document.getElementById('device').textContent), null, { timeout: 300_000, polling: 200 });
    await p.waitForFunction(() => !window.app.state.busy, null, { timeout: 60_000 });
    await p.setInputFiles('#file', clip);
    await p.waitForFunction(() => /16 frames/.test(document.getElementById('video-info').textContent) && !window.app.state.busy, null, { timeout: 60_000 });
    await p.click('#analyse');
    await p.waitForFunction(() => !document.getElementById('banner').hidden && /fewer frames/.test(document.getElementById('banner-text').textContent), null, { timeout: 300_000, polling: 200 });
    console.log(`ok: out of GPU memory -> ${await p.locator('#banner-text').innerText()}`);
    await p.close();
  }

  // --- offline: reload from the service worker, load from the cache, answer; no request ---
  await context.setOffline(true);
  const seen = requests.length;
  await page.reload();
  await page.waitForFunction(() => window.app !== undefined, null, { timeout: 60_000 });
  await page.click('#load');
  await page.waitForFunction(() => /Loaded/.test(document.getElementById('device').textContent), null, { timeout: 300_000, polling: 200 });
  await idle();
  await page.setInputFiles('#file', clip);
  await page.waitForFunction(() => /16 frames/.test(document.getElementById('video-info').textContent), null, { timeout: 60_000 });
  await idle();
  await page.selectOption('#max-new', '64');
  await page.selectOption('#frames', '8');
  const offline = await ask('How many chairs are in this room?');
  // The browser itself checks the service worker's scripts for updates on navigation (and playwright's
  // offline mode does not cover that check); offline it fails and the installed worker stays. The app
  // must make no request at all. The check covers sw.js and the scripts it imports.
  const swScripts = ['/sw.js', '/precache.js', '/csp.js'];
  const made = requests.slice(seen).map((r) => r.path).filter((p) => !swScripts.includes(p));
  if (made.length) fail(`offline run made ${made.length} network requests: ${made.join(', ')}`);
  if (offline.answer !== first.answer) fail(`offline answer ${JSON.stringify(offline.answer)} differs from the first ${JSON.stringify(first.answer)}`);
  console.log('ok: offline reload answered from the caches with no network request, the same answer as before');

  console.log('web app: all checks passed');
  code = 0;
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  await page.screenshot({ path: path.join(root, 'target/app-failure.png'), fullPage: true }).catch(() => {});
  console.error('(screenshot: target/app-failure.png)');
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
