// Models from the hub in headless Chromium, against the mock hub (tools/hub/mock-hub.mjs: resolve
// by revision, a 302 to a second origin for LFS files, Range, ETags, LFS SHA-256, CORS, injected
// faults) serving the upstream-layout fixtures of tests/fixtures and a package written by the CLI:
// 1. each fixture repository converted in the browser (the app's engine worker) gives a package
//    byte-identical to `spatial-mllm convert`'s, and the engine loads it from the cache;
// 2. a converted package repository is downloaded and verified, byte-identical;
// 3. 429 and 503 answers and a dropped connection are retried / resumed;
// 4. a reload in the middle of a conversion resumes (the bytes before it are not read again) and
//    finishes with the same bytes;
// 5. a file whose bytes do not hash to the hub's LFS SHA-256 is fetched again once; when it stays
//    wrong the error names it and nothing converted from it is kept;
// 6. an unknown repository, a gated one without a token (and with one), an unsupported
//    architecture, and a storage quota that runs out (then resumes once space is freed).
import { launch } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';
import { startMockHub } from '../../tools/hub/mock-hub.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const work = path.join(root, 'target/hub-browser');
const SHARD_KIB = 256; // several shards and split tensors even for the tiny fixtures
const fail = (msg) => { throw new Error(msg); };

// The CLI's packages of every fixture.
fs.rmSync(work, { recursive: true, force: true });
const fixtures = { qwen: 'qwen2.5-vl', vggt: 'vggt', 'spatial-v1.0': 'spatial-mllm-v1.0', 'spatial-v1.1': 'spatial-mllm-v1.1' };
const cliPackage = (name) => path.join(work, 'cli', name);
for (const [name, dir] of Object.entries(fixtures)) {
  execFileSync(path.join(root, 'target/release/spatial-mllm'), ['convert', `tests/fixtures/${dir}`, cliPackage(name), '--shard-kib', String(SHARD_KIB)], { cwd: root, stdio: 'inherit' });
}
// A repository of an architecture the engine does not run.
const bert = path.join(work, 'bert');
fs.mkdirSync(bert, { recursive: true });
fs.writeFileSync(path.join(bert, 'config.json'), JSON.stringify({ architectures: ['BertModel'], model_type: 'bert' }));
const header = Buffer.from(JSON.stringify({ 'encoder.layer.0.attention.self.query.weight': { dtype: 'F32', shape: [4, 4], data_offsets: [0, 64] } }));
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(header.length));
fs.writeFileSync(path.join(bert, 'model.safetensors'), Buffer.concat([len, header, Buffer.alloc(64)]));

const files = (dir) => Object.fromEntries(fs.readdirSync(dir).map((f) => {
  const bytes = fs.readFileSync(path.join(dir, f));
  return [f, { size: bytes.length, sha: crypto.createHash('sha256').update(bytes).digest('hex') }];
}));

const fx = (d) => path.join(root, 'tests/fixtures', d);
const hub = await startMockHub({
  repos: {
    'Test/qwen': { dir: fx('qwen2.5-vl') },
    'Test/vggt': { dir: fx('vggt') },
    'Test/spatial-v1.0': { dir: fx('spatial-mllm-v1.0') },
    'Test/spatial-v1.1': { dir: fx('spatial-mllm-v1.1') },
    'Test/resume': { dir: fx('spatial-mllm-v1.1') },
    'Test/corrupt-once': { dir: fx('qwen2.5-vl') },
    'Test/corrupt-always': { dir: fx('qwen2.5-vl') },
    'Test/quota': { dir: fx('vggt') },
    'Test/cancel': { dir: fx('vggt') },
    'Test/spatial-pkg': { dir: cliPackage('spatial-v1.1') },
    'Test/gated': { dir: fx('qwen2.5-vl'), gated: true, token: 'hf_granted' },
    'Test/bert': { dir: bert },
  },
});
const { server, url } = await serve(root);
const browser = await launch();
const page = await browser.newPage();
page.on('console', (m) => console.log(`[browser] ${m.text()}`));
const open = async () => {
  await page.goto(`${url}/tests/browser/hub.html`);
  await page.waitForFunction(() => window.__ready === true);
};
const call = (op, args) => page.evaluate(([o, a]) => window.__call(o, a), [op, { endpoint: hub.url, maxShard: SHARD_KIB * 1024, ...args }]);
const cached = (base) => page.evaluate((b) => window.__cached(b), base);

async function prepared(repo, args = {}) {
  const r = await call('prepare', { repo, ...args });
  if (r.error) fail(`${repo}: ${r.error.name}: ${r.error.message}`);
  return r.value;
}

function sameBytes(what, got, want) {
  const names = Object.keys(want).sort();
  if (JSON.stringify(Object.keys(got).sort()) !== JSON.stringify(names)) fail(`${what}: cached files ${Object.keys(got).sort()} differ from the CLI's ${names}`);
  for (const n of names) {
    if (got[n].size !== want[n].size || got[n].sha !== want[n].sha) fail(`${what}: ${n} differs from the CLI's (${got[n].size} B ${got[n].sha} vs ${want[n].size} B ${want[n].sha})`);
  }
  console.log(`${what}: ${names.length} files byte-identical to the CLI's`);
}

function expectError(what, r, name, re) {
  if (!r.error || r.error.name !== name || (re && !re.test(r.error.message))) fail(`${what}: expected ${name} matching ${re}, got ${JSON.stringify(r)}`);
  console.log(`${what}: ${r.error.name}: ${r.error.message}`);
}

let code = 1;
try {
  await open();
  // 1 + 3: every fixture converted, with faults injected into the VGGT one.
  hub.faults.push({ match: 'Test/vggt/resolve', status: 429, retryAfter: 0, times: 2 }, { match: 'repo=Test/vggt', status: 503, retryAfter: 0, times: 1 },
    { match: 'repo=Test/vggt', dropAfter: 3000, times: 1 });
  for (const name of (process.env.ONLY ? [process.env.ONLY] : Object.keys(fixtures))) {
    hub.requests.length = 0;
    const p = await prepared(`Test/${name}`);
    if (p.route !== 'convert' || !p.base.includes(`/Test/${name}/resolve/${hub.commit(`Test/${name}`)}/`)) fail(`${name}: ${JSON.stringify(p)}`);
    sameBytes(`${name} converted in the browser`, await cached(p.base), files(cliPackage(name)));
    const fileRequests = hub.requests.filter((r) => r.path.includes('/resolve/'));
    if (!fileRequests.every((r) => r.path.includes(`/resolve/${hub.commit(`Test/${name}`)}/`))) fail(`${name}: a file was requested by another revision than the pinned commit`);
    if (name === 'vggt') {
      if (p.retries < 4) fail(`vggt: 2 x 429, a 503 and a dropped connection should give 4 retries, got ${p.retries}`);
      console.log(`vggt: ${p.retries} retries after 429 / 503 / a dropped connection`);
    }
  }
  // The browser-converted Qwen2.5-VL package answers as the CLI does from its own package (the
  // fixture's text question, whose greedy margins were checked; f32 activations on both sides).
  const qwenRepo = await call('inspect', { repo: 'Test/qwen' });
  const question = 'How many chairs are there? \u623f\u95f4 123  !';
  const cliRun = JSON.parse(execFileSync(path.join(root, 'target/release/spatial-mllm'),
    ['--f32', 'run', '--model', cliPackage('qwen'), '-q', question, '--max-new-tokens', '24', '--json'], { cwd: root }).toString());
  const asked = await page.evaluate(async ([base, q]) => {
    const l = await window.__call('load', { modelUrl: base });
    if (l.error) return l;
    const t = await window.__call('text', { maxNew: 24 });
    if (t.error) return t;
    return window.__call('ask', { videoId: t.value.videoId, question: q, maxNew: 24 });
  }, [qwenRepo.value.base, question]);
  if (asked.error) fail(`asking the browser-converted Qwen2.5-VL package: ${asked.error.message}`);
  if (asked.value.text !== cliRun.answer || !cliRun.answer) fail(`the browser's answer ${JSON.stringify(asked.value.text)} differs from the CLI's ${JSON.stringify(cliRun.answer)}`);
  console.log(`the browser-converted Qwen2.5-VL package answers as the CLI: ${JSON.stringify(cliRun.answer)}`);

  const v11 = await call('inspect', { repo: 'Test/spatial-v1.1' });
  if (v11.error || !v11.value.cached || v11.value.kind !== 'spatial-mllm-v1.1') fail(`inspect after conversion: ${JSON.stringify(v11).slice(0, 400)}`);
  // The engine loads the converted package from the cache: not one request reaches the hub.
  hub.requests.length = 0;
  const loaded = await call('load', { modelUrl: v11.value.base });
  if (loaded.error) fail(`loading the converted package: ${loaded.error.message}`);
  if (hub.requests.length) fail(`loading a cached package requested ${hub.requests.map((r) => r.path)}`);
  console.log(`the engine loaded the browser-converted v1.1 package from the cache (${loaded.value.device})`);

  // 2: a converted package repository.
  const pkg = await prepared('Test/spatial-pkg');
  if (pkg.route !== 'package') fail(`spatial-pkg: route ${pkg.route}`);
  sameBytes('a package repository downloaded', await cached(pkg.base), files(cliPackage('spatial-v1.1')));

  // 4: a reload during a conversion: the source stalls for 8 s after 700 000 bytes, and the page
  // is reloaded meanwhile. The conversion then asks only for the bytes after the last stored part.
  hub.faults.push({ match: 'repo=Test/resume', stallAfter: 700_000, ms: 8000 });
  const resumeArgs = { repo: 'Test/resume', endpoint: hub.url, maxShard: SHARD_KIB * 1024 };
  await page.evaluate((a) => { window.__events.length = 0; window.__call('prepare', a); }, resumeArgs);
  await page.waitForFunction(() => window.__events.some((e) => e.kind === 'hub' && e.phase === 'convert' && e.done >= 650_000), null, { timeout: 120_000, polling: 20 });
  const before = (await page.evaluate(() => window.__events.filter((e) => e.kind === 'hub').at(-1)));
  await open();
  const resumeBase = `${hub.url}/Test/resume/resolve/${hub.commit('Test/resume')}/.spatial-mllm/`;
  const saved = (await page.evaluate((b) => window.__state(b), resumeBase))?.files?.['model.safetensors']?.pos ?? 0;
  hub.requests.length = 0;
  const resumed = await prepared('Test/resume');
  const source = fs.statSync(path.join(fx('spatial-mllm-v1.1'), 'model.safetensors')).size;
  const bodies = hub.requests.filter((r) => r.origin === 'lfs' && r.method === 'GET' && r.range && decodeURIComponent(r.path).includes('repo=Test/resume'));
  const from = bodies.map((r) => Number(/bytes=(\d+)-/.exec(r.range)[1])).filter((s) => s > 100_000);
  console.log(`reload at ${before.done} of ${before.total} bytes, ${saved} source bytes stored; after it the source was read from byte ${from}`);
  if (!(saved > 0) || from.length !== 1 || from[0] !== saved) fail('the conversion after the reload did not resume from the last stored part');
  sameBytes('a conversion resumed after a reload', await cached(resumed.base), files(cliPackage('spatial-v1.1')));

  // 5: a blob corrupted once is fetched again; corrupted every time, it is named and nothing kept.
  hub.faults.push({ match: 'repo=Test/corrupt-once', corrupt: true, times: 1 });
  const once = await prepared('Test/corrupt-once');
  sameBytes('a conversion after one corrupted download', await cached(once.base), files(cliPackage('qwen')));
  if (hub.faults.some((f) => f.match === 'repo=Test/corrupt-once')) fail('the corrupted answer was never served');
  hub.faults.push({ match: 'repo=Test/corrupt-always', corrupt: true, times: Infinity });
  expectError('a file corrupted on every download', await call('prepare', { repo: 'Test/corrupt-always' }), 'IntegrityError', /model\.safetensors.*SHA-256/);
  const base = `${hub.url}/Test/corrupt-always/resolve/${hub.commit('Test/corrupt-always')}/.spatial-mllm/`;
  const left = Object.keys(await cached(base)).filter((k) => k !== '__state.json');
  if (left.length) fail(`a corrupted file left converted data in the cache: ${left}`);
  hub.faults.length = 0;

  // 6: bad input.
  expectError('an unknown repository', await call('prepare', { repo: 'Test/nope' }), 'RepoNotFound', /Test\/nope/);
  expectError('an unknown revision', await call('prepare', { repo: 'Test/qwen', revision: 'v9' }), 'RevisionNotFound', /v9/);
  expectError('a gated repository without a token', await call('prepare', { repo: 'Test/gated' }), 'AccessDenied', /gated.*token/);
  expectError('a gated repository with a token without access', await call('prepare', { repo: 'Test/gated', token: 'hf_other' }), 'AccessDenied', /access/);
  const gated = await prepared('Test/gated', { token: 'hf_granted' });
  sameBytes('a gated repository with its token', await cached(gated.base), files(cliPackage('qwen')));
  const lfsAuth = hub.requests.filter((r) => r.origin === 'lfs' && r.auth);
  if (lfsAuth.length) fail(`the token was sent to the LFS origin: ${JSON.stringify(lfsAuth[0])}`);
  hub.requests.length = 0;
  expectError('an unsupported architecture', await call('prepare', { repo: 'Test/bert' }), 'UnsupportedModel', /BertModel/);
  const bertBytes = hub.requests.filter((r) => r.origin === 'lfs' && r.method === 'GET').map((r) => r.range);
  if (bertBytes.some((r) => !r)) fail(`an unsupported model's weights were downloaded: ${bertBytes}`);

  // The quota: a conversion that runs out of space says how much it needs, keeps what is done,
  // and resumes once space is freed.
  const cdp = await page.context().newCDPSession(page);
  const usage = await page.evaluate(async () => (await navigator.storage.estimate()).usage);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: url, quotaSize: usage + 400_000 });
  expectError('a quota that runs out', await call('prepare', { repo: 'Test/quota' }), 'QuotaExceeded', /needs about .*resumes/);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: url });
  hub.requests.length = 0;
  const quota = await prepared('Test/quota');
  sameBytes('a conversion resumed after the quota was raised', await cached(quota.base), files(cliPackage('vggt')));
  // Stop: a running prepare (held by a stalled source) rejects with AbortError, and loading again
  // finishes it.
  hub.faults.push({ match: 'repo=Test/cancel', stallAfter: 300_000, ms: 8000 });
  await page.evaluate((a) => { window.__events.length = 0; window.__pending = window.__call('prepare', a); }, { repo: 'Test/cancel', endpoint: hub.url, maxShard: SHARD_KIB * 1024 });
  await page.waitForFunction(() => window.__events.some((e) => e.kind === 'hub' && e.phase === 'convert' && e.done >= 250_000), null, { timeout: 120_000, polling: 10 });
  await call('cancel-prepare', {});
  expectError('a stopped download', await page.evaluate(() => window.__pending), 'AbortError', /stopped/);
  const cancelled = await prepared('Test/cancel');
  sameBytes('a conversion finished after a stop', await cached(cancelled.base), files(cliPackage('vggt')));
  code = 0;
  console.log('hub test passed');
} catch (e) {
  console.error(`hub test FAILED: ${e.stack ?? e}`);
} finally {
  await browser.close();
  server.close();
  await hub.close();
}
process.exit(code);
