// The app's model catalogue against a stand-in hub, in headless Chromium: the engine worker is
// served with `inspect` and `prepare` replaced by stubs that answer from a table (the real ones,
// www/hub/, are tested end to end in hub.mjs), and `prepare` puts the bundled demo package into
// Cache Storage under a hub URL, as the real one does with a converted checkpoint. Checks: the
// catalogue lists the real checkpoints; picking one shows download, package size, memory and the
// verdict; a typed repository id, a bad id, a gated repository with and without a token, hub text
// that looks like HTML (shown as text); the Advanced settings (?hub= wins, the token is a password
// field kept in localStorage and passed to inspect); Load shows bytes, rate, time left and phase,
// then loads the model with VGGT as the sampler; the Downloaded models list names the hub package
// by repository and commit and deletes it. Needs www/ assembled (tools/assemble-app.sh).
import { launch } from './chromium.mjs';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const www = path.join(root, 'www');
for (const need of ['pkg/spatial_mllm_web.js', 'models/demo/model/manifest.json']) {
  if (!fs.existsSync(path.join(www, need))) {
    console.error(`FAILED: www/${need} is missing: run tools/assemble-app.sh (or tools/build-app.sh) first`);
    process.exit(1);
  }
}
const files = (d) => fs.readdirSync(path.join(www, 'models/demo', d));
const COMMIT = 'c0ffee0123456789abcdef0123456789abcdef01';

// The stubs, appended to the real worker: a table of repositories the stand-in hub knows.
const STUBS = `
const demo = (part) => new URL('../models/demo/' + part + '/', self.location.href).href;
const FILES = ${JSON.stringify({ model: files('model'), sampler: files('sampler') })};
const REPOS = {
  'Diankun/Spatial-MLLM-v1.1-Instruct-135K': { kind: 'spatial-mllm-v1.1', part: 'model', route: 'convert', downloadBytes: 10.6e9, packageBytes: 3.2e9 },
  'facebook/VGGT-1B': { kind: 'vggt', part: 'sampler', route: 'convert', downloadBytes: 5.03e9, packageBytes: 1.3e9 },
  'someone/my-package': { kind: 'spatial-mllm-v1.1', part: 'model', route: 'package', downloadBytes: 3.1e9, packageBytes: 3.1e9 },
  'gated/model': { kind: 'spatial-mllm-v1.1', part: 'model', route: 'convert', downloadBytes: 10.6e9, packageBytes: 3.2e9, token: 'hf_good' },
};
self.__inspected = [];
const hubFail = (name, message) => Object.assign(new Error(message), { name });
async function answer({ repo, revision, endpoint, token }) {
  if (repo === 'html/message') throw hubFail('HubError', '<img src=x onerror="window.__pwned=1"><b>not bold</b>');
  const r = REPOS[repo];
  if (!r) throw hubFail('RepoNotFound', repo + ' is not on ' + endpoint + '.');
  if (r.token && token !== r.token) throw hubFail('AccessDenied', repo + ' is gated: accept its licence on its page.');
  const base = endpoint + '/' + repo + '/resolve/${COMMIT}/';
  const cached = !!(await (await caches.open('spatial-mllm-packages-v1')).match(base + 'manifest.json'));
  const manifestJson = await (await fetch(demo(r.part) + 'manifest.json')).text();
  return { repo, revision, commit: '${COMMIT}', route: r.route, kind: r.kind, downloadBytes: r.downloadBytes, packageBytes: r.packageBytes, manifestJson, base, cached, token };
}
ops.inspect = async (args) => { const a = await answer(args); self.__inspected.push(a); return { ...a, token: undefined }; };
ops['test-inspected'] = () => self.__inspected.map((a) => ({ repo: a.repo, token: a.token ?? null }));
ops.prepare = async (args, event) => {
  const a = await answer(args);
  const r = REPOS[args.repo];
  const total = r.downloadBytes + r.packageBytes;
  const steps = [['download', 0.2], ['download', 0.4], ['download', 0.6], ['convert', 0.75], ['convert', 0.9], ['assemble', 0.97], ['verify', 1]];
  for (const [phase, f] of steps) {
    await new Promise((ok) => setTimeout(ok, 400));
    event({ kind: 'hub', phase, done: Math.round(total * f), total, file: phase === 'download' ? 'model-00001-of-00002.safetensors' : '' });
  }
  const cache = await caches.open('spatial-mllm-packages-v1');
  for (const f of FILES[r.part]) await cache.put(a.base + f, await fetch(demo(r.part) + f));
  return { base: a.base, kind: a.kind, commit: a.commit, bytes: r.packageBytes };
};
`;

const fail = (msg) => { throw new Error(msg); };
const { server, url } = await serve(www);
const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1100, height: 1400 } });
await context.route('**/engine/worker.js', async (route) => {
  const res = await route.fetch();
  const src = (await res.text()).replace('const ready = init();', `${STUBS}\nconst ready = init();`);
  await route.fulfill({ response: res, body: src });
});
const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error') console.log(`[browser] ${m.text()}`); });
page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
let code = 1;

const hubUrl = `${url}/mock-hub`;
const card = () => page.locator('#capability').innerText();
async function cardMatches(re, timeout = 60_000) {
  await page.waitForFunction((src) => new RegExp(src).test(document.getElementById('capability').textContent), re.source, { timeout, polling: 100 });
  return card();
}
async function typeRepo(slot, repo, revision = '') {
  await page.selectOption(`#hub-${slot}`, 'other');
  await page.fill(`#hub-${slot}-rev`, revision);
  await page.fill(`#hub-${slot}-repo`, repo);
  await page.press(`#hub-${slot}-repo`, 'Enter');
  await page.locator(`#hub-${slot}-repo`).blur();
}

try {
  await page.goto(`${url}/?nosw&hub=${encodeURIComponent(hubUrl)}`);
  await page.waitForFunction(() => window.app !== undefined, null, { timeout: 60_000 });

  // --- the catalogue: the real checkpoints by repository id ---
  await page.check('input[name=model][value=hub]');
  const models = await page.locator('#hub-model option').evaluateAll((o) => o.map((x) => x.value));
  const samplers = await page.locator('#hub-sampler option').evaluateAll((o) => o.map((x) => x.value));
  for (const id of ['Diankun/Spatial-MLLM-v1.1-Instruct-135K', 'Diankun/Spatial-MLLM-v1.1-Instruct-820K', 'Diankun/Spatial-MLLM-subset-sft', 'Qwen/Qwen2.5-VL-3B-Instruct', 'other']) {
    if (!models.includes(id)) fail(`the model list lacks ${id}: ${models}`);
  }
  for (const id of ['facebook/VGGT-1B', 'none', 'other']) if (!samplers.includes(id)) fail(`the sampler list lacks ${id}: ${samplers}`);
  console.log(`ok: catalogue: ${models.join(', ')} | samplers: ${samplers.join(', ')}`);

  // --- picking a model checks it at once: sizes, memory, verdict, not downloaded yet ---
  let c = await cardMatches(/can run it|cannot run it|may not manage/);
  for (const want of [/Spatial-MLLM v1\.1 · 135K/, /download 10\.6 GB/, /3\.2 GB package/, /VGGT-1B/, /download 5 GB/, /Download in all: 15\.6 GB/, /With 16 frames it needs about/]) {
    if (!want.test(c)) fail(`the check lacks ${want}: ${c}`);
  }
  if (/cannot be cached/.test(c)) fail(`the storage check counted the download, not the converted package: ${c}`);
  await page.locator('#model-section').screenshot({ path: path.join(root, 'target/catalogue.png') });
  console.log(`ok: checked on picking: ${c.replace(/\n/g, ' | ')}`);
  await page.selectOption('#frames', '32');
  c = await cardMatches(/With 32 frames/);
  console.log('ok: the frame count changes the memory estimate');
  await page.selectOption('#frames', '16');

  // --- the settings: ?hub= wins and is shown; the token is a password field, saved, sent ---
  if (!(await page.locator('#hub-endpoint').isDisabled())) fail('the ?hub= address should fix the endpoint field');
  if ((await page.locator('#hub-token').getAttribute('type')) !== 'password') fail('the token field is not a password field');

  // --- typed ids: a bad one, a missing one, a gated one, HTML in a hub message ---
  await typeRepo('model', 'not a repository id');
  c = await cardMatches(/owner\/name/);
  console.log(`ok: bad id -> ${c}`);
  await typeRepo('model', 'nobody/nothing');
  c = await cardMatches(/is not on/);
  if (!(await page.locator('#capability a').count())) fail('no link to the repository page for a missing repository');
  console.log(`ok: missing repository -> ${c.replace(/\n/g, ' | ')}`);
  await typeRepo('model', 'gated/model');
  c = await cardMatches(/gated/);
  if (!/No access token is set/.test(c)) fail(`no token hint: ${c}`);
  console.log(`ok: gated -> ${c.replace(/\n/g, ' | ')}`);
  await page.click('#hub-advanced summary');
  await page.fill('#hub-token', 'hf_good');
  await page.press('#hub-token', 'Enter');
  await page.locator('#hub-token').blur();
  c = await cardMatches(/can run it|cannot run it|may not manage/);
  if ((await page.evaluate(() => localStorage.getItem('hubToken'))) !== 'hf_good') fail('the token was not kept');
  const sent = await page.evaluate(() => window.app.state.client.call('test-inspected'));
  if (!sent.some((s) => s.repo === 'gated/model' && s.token === 'hf_good')) fail(`inspect did not get the token: ${JSON.stringify(sent)}`);
  if (/hf_good/.test(await page.locator('body').innerText())) fail('the token shows on the page');
  console.log('ok: with the token the gated repository checks; the token is kept and passed to inspect');
  await typeRepo('model', 'html/message');
  c = await cardMatches(/not bold/);
  if ((await page.locator('#capability b, #capability img').count()) || (await page.evaluate(() => window.__pwned))) fail('hub text was rendered as HTML');
  console.log(`ok: hub text stays text: ${c}`);
  await typeRepo('model', 'https://huggingface.co/someone/my-package/tree/v2');
  c = await cardMatches(/someone\/my-package @ v2/);
  if (!/a converted package/.test(c)) fail(`a package repository is not described as one: ${c}`);
  console.log(`ok: a pasted repository address with a revision -> ${c.split('\n')[1]}`);
  await typeRepo('sampler', 'Diankun/Spatial-MLLM-v1.1-Instruct-135K');
  c = await cardMatches(/not a VGGT frame sampler/);
  console.log(`ok: a model as the sampler -> ${c}`);
  await page.selectOption('#hub-sampler', 'facebook/VGGT-1B');

  // --- load: download and conversion with bytes, rate, time left and phase, then the engine ---
  await page.selectOption('#hub-model', 'Diankun/Spatial-MLLM-v1.1-Instruct-135K');
  await cardMatches(/can run it|cannot run it|may not manage/);
  await page.evaluate(() => {
    window.__progress = [];
    new MutationObserver(() => window.__progress.push(document.getElementById('load-text').textContent))
      .observe(document.getElementById('load-text'), { childList: true, characterData: true, subtree: true });
  });
  await page.click('#load');
  await page.waitForFunction(() => /Loaded/.test(document.getElementById('device').textContent), null, { timeout: 300_000, polling: 200 });
  const progress = await page.evaluate(() => window.__progress);
  const line = progress.find((t) => /converting .* of .*\/s .* left/.test(t));
  if (!line) fail(`no progress line with bytes, rate, time left and phase: ${JSON.stringify(progress)}`);
  if (!progress.some((t) => /VGGT-1B \(2 of 2\)/.test(t))) fail(`the sampler's download did not show: ${JSON.stringify(progress)}`);
  const device = await page.locator('#device').innerText();
  if (!/Diankun\/Spatial-MLLM-v1\.1-Instruct-135K/.test(device) || /No VGGT/.test(device)) fail(`loaded: ${device}`);
  console.log(`ok: progress: ${line}`);
  console.log(`ok: ${device}`);

  // --- inspect now says it is downloaded; the cache list names it; delete ---
  await page.selectOption('#hub-model', 'Diankun/Spatial-MLLM-v1.1-Instruct-820K');
  await page.selectOption('#hub-model', 'Diankun/Spatial-MLLM-v1.1-Instruct-135K');
  await page.waitForFunction(() => !window.app.state.busy, null, { timeout: 60_000 });
  c = await cardMatches(/already downloaded/);
  console.log('ok: a prepared model checks as already downloaded');
  await page.click('#cache-panel summary');
  await page.waitForFunction(() => /Spatial-MLLM-v1\.1-Instruct-135K/.test(document.getElementById('cache-table').textContent), null, { timeout: 30_000 });
  const rows = await page.locator('#cache-table tbody tr').allInnerTexts();
  const row = rows.find((r) => r.includes('Diankun/Spatial-MLLM-v1.1-Instruct-135K'));
  if (!row.includes(`commit ${COMMIT.slice(0, 10)}`) || !row.includes('complete')) fail(`cache row: ${row}`);
  console.log(`ok: cached: ${rows.map((r) => r.replace(/\s+/g, ' ')).join(' | ')}`);
  await page.locator('#cache-table tbody tr', { hasText: 'Diankun/Spatial-MLLM-v1.1-Instruct-135K' }).locator('button').click();
  await page.waitForFunction(() => !/Spatial-MLLM-v1\.1-Instruct-135K/.test(document.getElementById('cache-table').textContent), null, { timeout: 30_000 });
  const left = await page.evaluate(async () => (await (await caches.open('spatial-mllm-packages-v1')).keys()).map((r) => r.url).filter((u) => u.includes('Instruct-135K')));
  if (left.length) fail(`deleting left ${left.join(', ')}`);
  console.log('ok: deleting the hub package removed all its files');

  console.log('catalogue: all checks passed');
  code = 0;
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  await page.screenshot({ path: path.join(root, 'target/catalogue-failure.png'), fullPage: true }).catch(() => {});
  console.error('(screenshot: target/catalogue-failure.png)');
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
