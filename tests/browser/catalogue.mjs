// The app's model catalogue in headless Chromium, against the real engine worker (its `inspect`,
// `prepare` and `cancel-prepare`: www/hub/) and the mock Hugging Face hub (tools/hub/mock-hub.mjs),
// which serves the catalogue's real repository ids with the tiny upstream-layout fixtures of
// tests/fixtures, a package written by `spatial-mllm convert` (someone/my-package) and a gated
// repository. Checks: the catalogue lists the real checkpoints; picking one shows the download
// (the fixture's weight files), the converted size (the CLI's package), memory and the verdict; a
// typed repository id, a bad id, a missing repository, a gated one without and with a token (kept
// in localStorage, sent to the hub, never shown); hub text echoing a typed revision with markup
// stays text; a pasted repository address with a revision; a model chosen as the sampler; the
// Advanced settings (?hub= wins, the token is a password field); Load, stopped mid-download with
// Stop download (the source held by a stalled mock answer), says so, and Load again resumes and
// shows bytes, rate, time left and phase, then loads the model with VGGT as the sampler; a
// text-only question is answered; the Downloaded models list names the hub package by repository
// and commit and deletes it. Needs www/ assembled (tools/assemble-app.sh) and the CLI
// (target/release/spatial-mllm).
import { launch } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';
import { startMockHub } from '../../tools/hub/mock-hub.mjs';
import { fmtBytes } from '../../www/models.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const www = path.join(root, 'www');
const cli = path.join(root, 'target/release/spatial-mllm');
for (const need of [path.join(www, 'pkg/spatial_mllm_web.js'), path.join(www, 'models/demo/model/manifest.json'), cli]) {
  if (!fs.existsSync(need)) {
    console.error(`FAILED: ${path.relative(root, need)} is missing: run tools/assemble-app.sh (and cargo build --release --features cli) first`);
    process.exit(1);
  }
}
const t0 = Date.now();
const fail = (msg) => { throw new Error(msg); };

// The CLI's packages of the fixtures: one is served as a package repository, and their sizes are
// what the browser's conversion must announce.
const work = path.join(root, 'target/catalogue-test');
fs.rmSync(work, { recursive: true, force: true });
const fx = (d) => path.join(root, 'tests/fixtures', d);
const pkgOf = {};
for (const d of ['spatial-mllm-v1.1', 'vggt']) {
  pkgOf[d] = path.join(work, d);
  execFileSync(cli, ['convert', fx(d), pkgOf[d]], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
const packageBytes = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).shards.reduce((a, s) => a + s.bytes, 0);
const weightBytes = (dir) => fs.statSync(path.join(dir, 'model.safetensors')).size; // what convert.js downloads

const MODEL = 'Diankun/Spatial-MLLM-v1.1-Instruct-135K';
const SAMPLER = 'facebook/VGGT-1B';
const hub = await startMockHub({
  repos: {
    [MODEL]: { dir: fx('spatial-mllm-v1.1') },
    'Diankun/Spatial-MLLM-subset-sft': { dir: fx('spatial-mllm-v1.0') },
    'Qwen/Qwen2.5-VL-3B-Instruct': { dir: fx('qwen2.5-vl') },
    [SAMPLER]: { dir: fx('vggt') },
    'someone/my-package': { dir: pkgOf['spatial-mllm-v1.1'] },
    'gated/model': { dir: fx('spatial-mllm-v1.1'), gated: true, token: 'hf_good' },
  },
});
const { server, url } = await serve(www);
const browser = await launch();
// bypassCSP: waitForFunction evaluates strings, which the app's policy forbids (tests/browser/trust.mjs tests the policy).
const context = await browser.newContext({ viewport: { width: 1100, height: 1400 }, bypassCSP: true });
const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error') console.log(`[browser] ${m.text()}`); });
page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
let code = 1;

const card = () => page.locator('#capability').innerText();
async function cardMatches(re, timeout = 60_000) {
  await page.waitForFunction((src) => new RegExp(src).test(document.getElementById('capability').textContent), re.source, { timeout, polling: 100 });
  return card();
}
const VERDICT = /can run it|cannot run it|may not manage/;
async function typeRepo(slot, repo, revision = '') {
  await page.selectOption(`#hub-${slot}`, 'other');
  await page.fill(`#hub-${slot}-rev`, revision);
  await page.fill(`#hub-${slot}-repo`, repo);
  await page.press(`#hub-${slot}-repo`, 'Enter');
  await page.locator(`#hub-${slot}-repo`).blur();
}
const idle = (timeout = 300_000) => page.waitForFunction(() => window.app && !window.app.state.busy, null, { timeout, polling: 100 });
const bannerText = () => page.evaluate(() => (document.getElementById('banner').hidden ? '' : document.getElementById('banner-text').textContent));
const until = async (what, cond, timeout = 60_000) => {
  const end = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

try {
  await page.goto(`${url}/?nosw&hub=${encodeURIComponent(hub.url)}`);
  await page.waitForFunction(() => window.app !== undefined, null, { timeout: 60_000 });

  // --- the catalogue: the real checkpoints by repository id ---
  await page.check('input[name=model][value=hub]');
  const models = await page.locator('#hub-model option').evaluateAll((o) => o.map((x) => x.value));
  const samplers = await page.locator('#hub-sampler option').evaluateAll((o) => o.map((x) => x.value));
  for (const id of [MODEL, 'Diankun/Spatial-MLLM-v1.1-Instruct-820K', 'Diankun/Spatial-MLLM-subset-sft', 'Qwen/Qwen2.5-VL-3B-Instruct', 'other']) {
    if (!models.includes(id)) fail(`the model list lacks ${id}: ${models}`);
  }
  for (const id of [SAMPLER, 'none', 'other']) if (!samplers.includes(id)) fail(`the sampler list lacks ${id}: ${samplers}`);
  console.log(`ok: catalogue: ${models.join(', ')} | samplers: ${samplers.join(', ')}`);

  // --- picking a model checks it at once against the hub: sizes, memory, verdict ---
  const modelDl = weightBytes(fx('spatial-mllm-v1.1'));
  const samplerDl = weightBytes(fx('vggt'));
  let c = await cardMatches(VERDICT);
  const wants = [
    /Spatial-MLLM v1\.1 · 135K/, new RegExp(`download ${fmtBytes(modelDl)} \\(the original checkpoint\\), converted in this browser into a ${fmtBytes(packageBytes(pkgOf['spatial-mllm-v1.1']))} package`),
    /VGGT-1B/, new RegExp(`download ${fmtBytes(samplerDl)} \\(the original checkpoint\\), converted in this browser into a ${fmtBytes(packageBytes(pkgOf.vggt))} package`),
    new RegExp(`Download in all: ${fmtBytes(modelDl + samplerDl)}\\.`), /With 16 frames it needs about/,
    new RegExp(`commit ${hub.commit(MODEL).slice(0, 10)}`), new RegExp(`commit ${hub.commit(SAMPLER).slice(0, 10)}`),
  ];
  for (const want of wants) if (!want.test(c)) fail(`the check lacks ${want}: ${c}`);
  if (/cannot be cached/.test(c)) fail(`the storage check counted the download, not the converted package: ${c}`);
  await page.locator('#model-section').screenshot({ path: path.join(root, 'target/catalogue.png') });
  console.log(`ok: checked on picking: ${c.replace(/\n/g, ' | ')}`);
  const estimate = (t) => /needs about ([\d.]+ [KMG]?B)/.exec(t)?.[1];
  const at16 = estimate(c);
  await page.selectOption('#frames', '32');
  c = await cardMatches(/With 32 frames/);
  console.log(`ok: the frame count changes the memory estimate (16 frames: ${at16}, 32: ${estimate(c)})`);
  await page.selectOption('#frames', '16');
  await cardMatches(/With 16 frames/);

  // --- the settings: ?hub= wins and is shown; the token is a password field ---
  if (!(await page.locator('#hub-endpoint').isDisabled())) fail('the ?hub= address should fix the endpoint field');
  if ((await page.locator('#hub-token').getAttribute('type')) !== 'password') fail('the token field is not a password field');

  // --- typed ids: a bad one, a missing one, a gated one ---
  await typeRepo('model', 'not a repository id');
  c = await cardMatches(/owner\/name/);
  console.log(`ok: bad id -> ${c}`);
  await typeRepo('model', 'nobody/nothing');
  c = await cardMatches(/nobody\/nothing was not found on/);
  if (!(await page.locator('#capability a').count())) fail('no link to the repository page for a missing repository');
  console.log(`ok: missing repository -> ${c.replace(/\n/g, ' | ')}`);
  hub.requests.length = 0;
  await typeRepo('model', 'gated/model');
  c = await cardMatches(/gated/);
  if (!/token/.test(c) || !/Advanced/.test(c)) fail(`no hint to set a token under Advanced: ${c}`);
  if (hub.requests.some((r) => r.auth)) fail('a token was sent before one was set');
  console.log(`ok: gated -> ${c.replace(/\n/g, ' | ')}`);
  await page.click('#hub-advanced summary');
  await page.fill('#hub-token', 'hf_good');
  await page.press('#hub-token', 'Enter');
  await page.locator('#hub-token').blur();
  c = await cardMatches(VERDICT);
  if (!/gated\/model/.test(c)) fail(`the gated repository's check: ${c}`);
  if ((await page.evaluate(() => localStorage.getItem('hubToken'))) !== 'hf_good') fail('the token was not kept');
  const sent = hub.requests.filter((r) => r.origin === 'hub' && decodeURIComponent(r.path).includes('gated/model') && r.auth === 'Bearer hf_good');
  if (!sent.length) fail(`the hub did not get the token: ${JSON.stringify(hub.requests.slice(-5))}`);
  if (hub.requests.some((r) => r.origin === 'lfs' && r.auth)) fail('the token was sent to the LFS origin');
  if (/hf_good/.test(await page.locator('body').innerText())) fail('the token shows on the page');
  console.log(`ok: with the token the gated repository checks (${sent.length} hub requests carried it); the token is kept`);

  // --- hub text that echoes markup typed in (a revision) stays text ---
  await typeRepo('model', 'someone/my-package', '<img src=x onerror="window.__pwned=1"><b>not bold</b>');
  c = await cardMatches(/<b>not bold<\/b>/);
  if ((await page.locator('#capability b, #capability img').count()) || (await page.evaluate(() => window.__pwned))) fail('hub text was rendered as HTML');
  console.log(`ok: hub text stays text: ${c.replace(/\n/g, ' | ')}`);

  // --- a pasted repository address with a revision (the commit); a package repository ---
  const pkgCommit = hub.commit('someone/my-package');
  await typeRepo('model', `https://huggingface.co/someone/my-package/tree/${pkgCommit}`);
  c = await cardMatches(new RegExp(`someone/my-package @ ${pkgCommit}`));
  const pkgDl = packageBytes(pkgOf['spatial-mllm-v1.1']);
  if (!new RegExp(`download ${fmtBytes(pkgDl)} \\(a converted package\\)`).test(c)) fail(`a package repository is not described as one: ${c}`);
  console.log(`ok: a pasted repository address with a revision -> ${c.split('\n')[1]}`);
  await typeRepo('sampler', MODEL);
  c = await cardMatches(/not a VGGT frame sampler/);
  console.log(`ok: a model as the sampler -> ${c}`);
  await page.selectOption('#hub-sampler', SAMPLER);

  // --- Load, stopped mid-download: the source stalls for 8 s after 300 000 bytes ---
  await page.selectOption('#hub-model', MODEL);
  await cardMatches(new RegExp(`(${VERDICT.source})[\\s\\S]*Spatial-MLLM v1\\.1 · 135K[\\s\\S]*VGGT-1B`));
  await page.evaluate(() => {
    window.__progress = [];
    new MutationObserver(() => window.__progress.push(document.getElementById('load-text').textContent))
      .observe(document.getElementById('load-text'), { childList: true, characterData: true, subtree: true });
  });
  const stall = { match: `repo=${MODEL}`, stallAfter: 300_000, ms: 8000 };
  hub.faults.push(stall);
  await page.click('#load');
  await until('the stalled source', () => !hub.faults.includes(stall));
  await page.waitForFunction(() => /converting/.test(document.getElementById('load-text').textContent) && !document.getElementById('load-stop').hidden, null, { timeout: 60_000, polling: 50 });
  await new Promise((r) => setTimeout(r, 1000)); // the bytes before the stall are stored meanwhile
  const stoppedAt = Date.now();
  await page.click('#load-stop');
  await idle(60_000);
  if (Date.now() - stoppedAt > 6000) fail(`the stop took ${Date.now() - stoppedAt} ms: it waited for the stalled source`);
  const stopped = await bannerText();
  if (!/Spatial-MLLM-v1\.1-Instruct-135K.*stopped.*resumes/.test(stopped)) fail(`the stop's message: ${JSON.stringify(stopped)}`);
  if ((await page.evaluate(() => document.getElementById('banner').className)) !== 'info') fail('the user\'s own stop is shown as an error');
  if (!(await page.locator('#load-stop').isHidden())) fail('Stop download still shows after the stop');
  if (/Loaded/.test(await page.locator('#device').innerText())) fail('a stopped download loaded a model');
  console.log(`ok: Stop download during the download -> ${stopped} (in ${Date.now() - stoppedAt} ms)`);

  // --- Load again: resumes, with bytes, rate, time left and phase (a 1.5 s stall makes a rate) ---
  hub.requests.length = 0;
  await page.evaluate(() => { window.__progress.length = 0; document.getElementById('banner').hidden = true; });
  hub.faults.push({ match: `repo=${MODEL}`, stallAfter: 300_000, ms: 1500 });
  await page.click('#load');
  await page.waitForFunction(() => /Loaded/.test(document.getElementById('device').textContent), null, { timeout: 300_000, polling: 200 });
  await idle();
  const progress = await page.evaluate(() => window.__progress);
  const line = progress.find((t) => /converting · .* of .* · .*\/s · .* left/.test(t));
  if (!line) fail(`no progress line with bytes, rate, time left and phase: ${JSON.stringify(progress)}`);
  if (!progress.some((t) => /VGGT-1B \(2 of 2\)/.test(t))) fail(`the sampler's download did not show: ${JSON.stringify(progress)}`);
  const sourceReads = hub.requests.filter((r) => r.origin === 'lfs' && r.method === 'GET' && r.range && decodeURIComponent(r.path).includes(`repo=${MODEL}`))
    .map((r) => Number(/bytes=(\d+)-/.exec(r.range)[1])).filter((s) => s > 100_000);
  if (!sourceReads.length) fail('the conversion after the stop did not resume from what was kept (it read the file from the start)');
  const device = await page.locator('#device').innerText();
  if (!device.includes(MODEL) || /No VGGT/.test(device)) fail(`loaded: ${device}`);
  console.log(`ok: Load again resumed the source from byte ${sourceReads[0]}; progress: ${line}`);
  console.log(`ok: ${device}`);

  // --- a question with the loaded model and no video: answered text-only ---
  await page.selectOption('#max-new', '64');
  await page.fill('#question', 'How many chairs are there?');
  await page.click('#ask');
  await page.waitForFunction(() => document.querySelector('#log > div .s')?.textContent || document.querySelector('#log > div .a')?.textContent.includes('[failed'), null, { timeout: 300_000, polling: 200 });
  await idle();
  const answer = await page.evaluate(() => ({ a: document.querySelector('#log > div .a').textContent, s: document.querySelector('#log > div .s').textContent }));
  if (answer.a.includes('[failed') || !answer.a.trim() || !/conversation's cache.* tokens at/.test(answer.s)) fail(`the question: ${JSON.stringify(answer)}`);
  console.log(`ok: a question answered by the hub model: ${JSON.stringify(answer.a)} (${answer.s})`);

  // --- inspect now says it is downloaded; the cache list names it; delete ---
  await page.selectOption('#hub-model', 'Diankun/Spatial-MLLM-v1.1-Instruct-820K');
  c = await cardMatches(/Spatial-MLLM-v1\.1-Instruct-820K was not found/);
  await page.selectOption('#hub-model', MODEL);
  c = await cardMatches(/135K[\s\S]*already downloaded/);
  if (!/VGGT-1B[\s\S]*already downloaded/.test(c) || /Download in all/.test(c)) fail(`after loading, the check: ${c}`);
  console.log('ok: a prepared model checks as already downloaded (820K, not on the mock hub, says so)');
  await page.click('#cache-panel summary');
  await page.waitForFunction((m) => document.getElementById('cache-table').textContent.includes(m), MODEL, { timeout: 30_000 });
  const rows = await page.locator('#cache-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  // The browser's package is the CLI's, byte for byte (hub.mjs checks that): the same files.
  const dirBytes = (dir) => fs.readdirSync(dir).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
  for (const [repo, dir] of [[MODEL, pkgOf['spatial-mllm-v1.1']], [SAMPLER, pkgOf.vggt]]) {
    const row = rows.find((r) => r[0].startsWith(repo));
    if (!row || row[0] !== `${repo} · commit ${hub.commit(repo).slice(0, 10)} · ${hub.url}` || row[1] !== fmtBytes(dirBytes(dir)) || row[2] !== 'complete') {
      fail(`cache row of ${repo}: ${JSON.stringify(row)} (want the commit ${hub.commit(repo).slice(0, 10)}, ${fmtBytes(dirBytes(dir))}, complete)`);
    }
  }
  console.log(`ok: cached: ${rows.map((r) => r.slice(0, 3).join(' · ')).join(' | ')}`);
  await page.locator('#cache-table tbody tr', { hasText: MODEL }).locator('button').click();
  await page.waitForFunction((m) => !document.getElementById('cache-table').textContent.includes(m), MODEL, { timeout: 30_000 });
  const left = await page.evaluate(async () => (await (await caches.open('spatial-mllm-packages-v1')).keys()).map((r) => r.url).filter((u) => u.includes('Instruct-135K')));
  if (left.length) fail(`deleting left ${left.join(', ')}`);
  // The check on show no longer says it is downloaded.
  c = await cardMatches(new RegExp(`135K[\\s\\S]*download ${fmtBytes(modelDl)} \\(the original checkpoint\\)`), 10_000)
    .catch(() => fail(`after the delete the check still says: ${c}`));
  console.log('ok: deleting the hub package removed all its files, and the check offers the download again');

  console.log(`catalogue: all checks passed (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  code = 0;
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  const seen = await page.evaluate(() => ({ load: document.getElementById('load-text').textContent, banner: document.getElementById('banner').hidden ? '' : document.getElementById('banner-text').textContent, progress: (window.__progress ?? []).slice(-8) })).catch(() => null);
  if (seen) console.error(`(load: ${JSON.stringify(seen.load)}; banner: ${JSON.stringify(seen.banner)}; last progress: ${JSON.stringify(seen.progress)})`);
  await page.screenshot({ path: path.join(root, 'target/catalogue-failure.png'), fullPage: true }).catch(() => {});
  console.error('(screenshot: target/catalogue-failure.png)');
} finally {
  await browser.close();
  server.close();
  await hub.close();
}
process.exit(code);
