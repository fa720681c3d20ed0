// Faults in the browser (issue 19), in headless Chromium: the app's engine facade and its worker
// (tests/browser/hub.html) and the wasm loader alone (tests/browser/package.html, `load_package`),
// on packages the CLI converts from the tiny fixtures (Spatial-MLLM v1.1: 6 shards; Qwen2.5-VL: 2
// shards), served by tools/static-server.mjs (packages by URL: src/weights/http.rs) and by the mock
// hub (tools/hub/mock-hub.mjs: www/hub/). Answers are text-only questions, compared with the CLI's
// on the same package (f32 activations on both sides). One case per fault:
// 1. two tabs of the origin loading the same package by URL, and preparing the same hub model, at
//    once: one download (each file counted at the server), shared through a Web Lock; both answer;
// 2. damaged storage (that package): a cached shard with a flipped byte, the manifest and the
//    tokenizer cut in half are detected, fetched again (exactly those three requests), the cache
//    is repaired and the answer is the one before the damage; then a cached manifest that still
//    parses but names a wrong SHA-256: the host's manifest replaces it (only it is fetched);
// 3. the quota running out (lowered through the DevTools protocol) in the middle of a hub package
//    download and of a load by URL: a message naming the space still needed, no manifest cached
//    (so the half-done package is never used as whole), every kept entry whole; with the quota
//    raised only the shards not kept are fetched;
// 4. connections cut at random byte offsets (seeded: FAULT_SEED=n replays) over every file of the
//    6-shard package (the manifest and shards): it loads and every cached file's SHA-256 is right;
// 5. the tab reloaded during a hub conversion at a random point: it resumes from the last stored
//    part (one request from that byte on) and the package is the CLI's, byte for byte.
// Needs www/ assembled (tools/assemble-app.sh) and the CLI (target/release/spatial-mllm).
import { launch } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';
import { startMockHub } from '../../tools/hub/mock-hub.mjs';
import { PACKAGE_CACHE } from '../../www/hub/convert.js';
import { files, sameBytes, seeded } from './package-files.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'target/release/spatial-mllm');
for (const need of [path.join(root, 'www/pkg/spatial_mllm_web.js'), cli]) {
  if (!fs.existsSync(need)) {
    console.error(`FAILED: ${path.relative(root, need)} is missing: run tools/build-app.sh (the wasm engine, the CLI, tools/assemble-app.sh) first`);
    process.exit(1);
  }
}
const t0 = Date.now();
const fail = (msg) => { throw new Error(msg); };
const SHARD_KIB = 256; // 6 shards for the 2.3 MB fixture (the CLI's run needs the patch embedding in one)
const QUESTION = 'How many chairs are there?';
const MAX_NEW = 4; // the first answer's time is mostly SwiftShader compiling the pipelines
const SEED = Number(process.env.FAULT_SEED ?? crypto.randomInt(2 ** 31));
console.log(`fault seed ${SEED} (FAULT_SEED=${SEED} replays the same cuts and reload point)`);
const random = seeded(SEED);
// ONLY=3,4 runs those cases alone (case 2 needs case 1's package and answer: it runs with it).
const only = process.env.ONLY?.split(',');
const want = (n) => !only || only.includes(n) || (n === '2' && only.includes('1'));
const mb = (b) => `${(b / 1e6).toFixed(1)} MB`; // as both the loader's and the hub's messages write it

// The CLI's packages, a copy per case (each case its own URL, so its own cache entries).
const work = path.join(root, 'target/faults-browser');
fs.rmSync(work, { recursive: true, force: true });
const convert = (from, to) => execFileSync(cli, ['convert', from, to, '--shard-kib', String(SHARD_KIB)], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
const reference = path.join(work, 'spatial');
convert(path.join(root, 'tests/fixtures/spatial-mllm-v1.1'), reference);
// The hub's conversions: the Qwen2.5-VL fixture (a 441 KB source) and the CLI's package of it.
const fixture = path.join(root, 'tests/fixtures/qwen2.5-vl');
const hubReference = path.join(work, 'qwen');
convert(fixture, hubReference);
for (const c of ['quota', 'drops']) fs.cpSync(reference, path.join(work, c), { recursive: true });
fs.cpSync(hubReference, path.join(work, 'tabs'), { recursive: true });
const hubShards = JSON.parse(fs.readFileSync(path.join(hubReference, 'manifest.json'), 'utf8')).shards;
const manifest = JSON.parse(fs.readFileSync(path.join(reference, 'manifest.json'), 'utf8'));
const shards = manifest.shards;
if (shards.length < 3) fail(`want a package of several shards, got ${shards.length}`);
const total = shards.reduce((a, s) => a + s.bytes, 0);
const manifestBytes = fs.statSync(path.join(reference, 'manifest.json')).size;
const answerOf = (dir) => JSON.parse(execFileSync(cli, ['--f32', 'run', '--model', dir, '-q', QUESTION, '--max-new-tokens', String(MAX_NEW), '--json'], { cwd: root }).toString()).answer;
const cliAnswers = { [hubReference]: answerOf(hubReference) };
console.log(`the CLI's packages: ${shards.length} shards (${total} bytes), ${hubShards.length} shards; the answer ${JSON.stringify(cliAnswers[hubReference])}`);

const hub = await startMockHub({ repos: { 'Test/pkg-quota': { dir: reference }, 'Test/tabs': { dir: fixture }, 'Test/reload': { dir: fixture } } });
const { server, url, requests, chaos } = await serve(root);
const browser = await launch();
const context = await browser.newContext();
const page = await context.newPage();
const cdp = await context.newCDPSession(page);
const outcomes = [];
const ended = (what) => { outcomes.push(what); console.log(`ok: ${what}`); };

// The cut connections' own console errors are expected; anything else is shown.
const watch = (p) => p.on('console', (m) => { if (m.type() === 'error' && !/ERR_CONTENT_LENGTH_MISMATCH/.test(m.text())) console.log(`[browser] ${m.text()}`); });
watch(page);
const open = async (p = page) => {
  await p.goto(`${url}/tests/browser/hub.html`);
  await p.waitForFunction(() => window.__ready === true);
};
const call = async (p, op, args) => p.evaluate(([o, a]) => window.__call(o, a), [op, { endpoint: hub.url, maxShard: SHARD_KIB * 1024, ...args }]);
/** The cache entries under `base` with their size and SHA-256 (as hub.html's __cached, on any page of the origin). */
const cached = (base, p = page) => p.evaluate(async ([b, name]) => {
  const cache = await caches.open(name);
  const out = {};
  for (const req of await cache.keys()) {
    if (!req.url.startsWith(b)) continue;
    const bytes = new Uint8Array(await (await cache.match(req)).arrayBuffer());
    const sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((x) => x.toString(16).padStart(2, '0')).join('');
    out[req.url.slice(b.length)] = { size: bytes.length, sha };
  }
  return out;
}, [base, PACKAGE_CACHE]);
const usage = () => page.evaluate(async () => (await navigator.storage.estimate()).usage);
const setQuota = (quotaSize) => cdp.send('Storage.overrideQuotaForOrigin', quotaSize === undefined ? { origin: url } : { origin: url, quotaSize });
const pkgPath = (c) => `/target/faults-browser/${c}/`;
const served = (c) => requests.filter((r) => r.path.startsWith(pkgPath(c))).map((r) => r.path.slice(pkgPath(c).length));

/** A package's files but its tokenizer (which `load_package` does not read). */
const weights = (dir) => Object.fromEntries(Object.entries(files(dir)).filter(([f]) => f !== 'tokenizer.json'));

/** The wasm loader alone (`load_package`, tests/browser/package.html) on `base`: its LoadReport. */
async function loadPackage(base) {
  await page.goto(`${url}/tests/browser/package.html?base=${encodeURIComponent(base)}`);
  await page.waitForFunction(() => window.__done === true, null, { timeout: 120_000, polling: 50 });
  const r = await page.evaluate(() => ({ report: window.__report, error: window.__error }));
  if (r.error) fail(`load_package(${base}): ${r.error}`);
  return r.report;
}

/** Load the package at `base` in `p`'s engine and ask the question without a video: the answer
 * must be the CLI's on the package `like`. */
async function loadAndAsk(p, base, like) {
  const cliAnswer = cliAnswers[like];
  const r = await p.evaluate(async ([m, q, n]) => {
    const l = await window.__call('load', { modelUrl: m });
    if (l.error) return l;
    const t = await window.__call('text', { maxNew: n });
    if (t.error) return t;
    const a = await window.__call('ask', { videoId: t.value.videoId, question: q, maxNew: n });
    return a.error ? a : { value: { report: l.value.report, text: a.value.text } };
  }, [base, QUESTION, MAX_NEW]);
  if (r.error) fail(`loading ${base} and asking: ${r.error.name}: ${r.error.message}`);
  if (r.value.text !== cliAnswer) fail(`${base} answered ${JSON.stringify(r.value.text)}, the CLI ${JSON.stringify(cliAnswer)}`);
  return r.value;
}

let code = 1;
try {
  await open();

  // ---- 1. two tabs at once (their answers are the unaltered run case 2 compares with) ---------
  let unaltered;
  if (want('1')) {
    const base = `${url}${pkgPath('tabs')}`;
    const other = await context.newPage();
    watch(other);
    await open(other);
    chaos.delay = { prefix: pkgPath('tabs'), ms: 600 }; // a slow server, so the loads overlap
    requests.length = 0;
    let both;
    try { both = await Promise.all([loadAndAsk(page, base, hubReference), loadAndAsk(other, base, hubReference)]); } finally { chaos.delay = null; }
    const counts = {};
    for (const f of served('tabs')) counts[f] = (counts[f] ?? 0) + 1;
    const nFiles = hubShards.length + 2;
    if (Object.values(counts).some((n) => n !== 1) || Object.keys(counts).length !== nFiles) fail(`two tabs requested ${JSON.stringify(counts)}: want each file once`);
    const fromCache = both.map((b) => b.report.shards_from_cache).sort();
    if (fromCache[0] !== 0 || fromCache[1] !== hubShards.length) fail(`want one tab from the network, one from the cache: ${JSON.stringify(both.map((b) => b.report))}`);
    unaltered = both[0].text;
    // The same for a hub model prepared (converted) in both tabs at once.
    const repo = 'Test/tabs';
    const size = fs.statSync(path.join(fixture, 'model.safetensors')).size;
    hub.requests.length = 0;
    hub.faults.push({ match: `repo=${repo}`, stallAfter: 100_000, ms: 1000 });
    const prepared = await Promise.all([page, other].map((p) => call(p, 'prepare', { repo })));
    for (const p of prepared) if (p.error) fail(`two tabs preparing ${repo}: ${p.error.message}`);
    const bodies = hub.requests.filter((q) => q.origin === 'lfs' && q.method === 'GET' && q.range?.endsWith(`-${size - 1}`));
    if (bodies.length !== 1 || prepared.filter((p) => p.value.waited).length !== 1) fail(`two tabs converting: ${bodies.length} body requests (want 1), waited ${prepared.map((p) => p.value.waited)}`);
    sameBytes('a hub model converted once for two tabs', await cached(prepared[0].value.base), files(hubReference));
    await other.close();
    ended(`two tabs loading one package by URL at once: each of its ${nFiles} files requested once, one tab loaded from the network and the other, after waiting on the Web Lock, from the cache; both answered ${JSON.stringify(unaltered)} (the CLI's). Two tabs preparing one hub model: one conversion (one body request), the other waited and found it cached`);
  }

  // ---- 2. damaged storage: the package the tabs loaded ---------------------------------------
  if (want('2') && unaltered !== undefined) {
    const base = `${url}${pkgPath('tabs')}`;
    const victim = hubShards[1].file;
    await page.evaluate(async ([b, v, name]) => {
      const cache = await caches.open(name);
      const edit = async (file, f) => {
        const bytes = new Uint8Array(await (await cache.match(b + file)).arrayBuffer());
        await cache.put(b + file, new Response(f(bytes)));
      };
      await edit(v, (x) => { x[x.length >> 1] ^= 0x20; return x; });
      await edit('manifest.json', (x) => x.subarray(0, x.length >> 1));
      await edit('tokenizer.json', (x) => x.subarray(0, x.length >> 1));
    }, [base, victim, PACKAGE_CACHE]);
    if ((await cached(base))[victim].sha === files(hubReference)[victim].sha) fail('the cached shard was not altered');
    await open(); // a reload: a new page and worker
    requests.length = 0;
    const again = await loadAndAsk(page, base, hubReference);
    const fetched = served('tabs').sort();
    const want = ['manifest.json', 'tokenizer.json', victim].sort();
    if (JSON.stringify(fetched) !== JSON.stringify(want)) fail(`after the damage the load requested ${fetched}, want exactly ${want}`);
    if (JSON.stringify(again.report.damaged_in_cache.sort()) !== JSON.stringify(['manifest.json', victim].sort())) fail(`the report names ${again.report.damaged_in_cache} as damaged`);
    if (again.report.shards_from_cache !== hubShards.length - 1) fail(`want ${hubShards.length - 1} shard(s) from the cache: ${JSON.stringify(again.report)}`);
    if (again.text !== unaltered) fail(`the answer changed after the cache was repaired: ${JSON.stringify(again.text)} vs ${JSON.stringify(unaltered)}`);
    sameBytes('the cache after the damaged entries were replaced', await cached(base), files(path.join(work, 'tabs')));
    ended(`damaged cache: ${victim} with a flipped byte failed its SHA-256, the manifest and tokenizer cut in half failed to parse; exactly these 3 files were fetched again, the cache repaired, the answer unchanged`);

    // A cached manifest that still parses but names a wrong SHA-256 (altered in storage, or a
    // package replaced under the same URL): the host's manifest decides; no shard is fetched twice.
    const first = hubShards[0].file;
    await page.evaluate(async ([b, name, file]) => {
      const cache = await caches.open(name);
      const m = JSON.parse(await (await cache.match(`${b}manifest.json`)).text());
      const shard = m.shards.find((s) => s.file === file);
      shard.sha256 = (shard.sha256[0] === '0' ? '1' : '0') + shard.sha256.slice(1);
      await cache.put(`${b}manifest.json`, new Response(JSON.stringify(m)));
    }, [base, PACKAGE_CACHE, first]);
    await open();
    requests.length = 0;
    const third = await loadAndAsk(page, base, hubReference);
    const refetched = served('tabs').sort();
    if (JSON.stringify(refetched) !== JSON.stringify(['manifest.json'])) fail(`with an altered cached manifest the load requested ${refetched}, want only the manifest`);
    if (JSON.stringify(third.report.damaged_in_cache) !== JSON.stringify(['manifest.json']) || third.report.shards_from_cache !== hubShards.length) fail(`altered manifest: ${JSON.stringify(third.report)}`);
    if (third.text !== unaltered) fail(`the answer changed after the manifest was replaced: ${JSON.stringify(third.text)}`);
    sameBytes('the cache after the altered manifest was replaced', await cached(base), files(path.join(work, 'tabs')));
    ended(`a cached manifest naming a wrong SHA-256 for ${first} (still valid JSON): the shard's contradiction sent the loader to the host's manifest, which replaced it; only the manifest was fetched, every shard came from the cache, the answer unchanged`);
  }

  // ---- 3. the quota runs out -------------------------------------------------------------------
  if (want('3')) {
    // a. A hub package download: the quota is lowered while shard 1 streams (held by a stall).
    const repo = 'Test/pkg-quota';
    const base = `${hub.url}/${repo}/resolve/${hub.commit(repo)}/`;
    hub.faults.push({ match: `repo=${repo}&file=${shards[1].file}`, stallAfter: 1000, ms: 2500 });
    await page.evaluate((a) => { window.__events.length = 0; window.__pending = window.__call('prepare', a); }, { repo, endpoint: hub.url, maxShard: SHARD_KIB * 1024 });
    await page.waitForFunction((f) => window.__events.some((e) => e.kind === 'hub' && e.file === f), shards[1].file, { timeout: 60_000, polling: 10 });
    await setQuota((await usage()) + 4000);
    const r = await page.evaluate(() => window.__pending);
    const needed = total - shards[0].bytes + manifestBytes;
    const text = `needs about ${mb(needed)} more. Free ${mb(needed)} in the site settings or delete downloaded models`;
    if (r.error?.name !== 'QuotaExceeded' || !r.error.message.includes(text) || !/resumes where it stopped/.test(r.error.message)) fail(`a full quota during a hub download: want QuotaExceeded with "${text}", got ${JSON.stringify(r)}`);
    console.log(`a quota lowered mid-download: ${r.error.name}: ${r.error.message}`);
    const kept = await cached(base);
    if (kept['manifest.json']) fail('a manifest was cached for an incomplete package');
    const whole = files(reference);
    for (const [f, v] of Object.entries(kept)) if (v.sha !== whole[f]?.sha) fail(`a half-written entry was kept: ${f}`);
    if (!kept[shards[0].file] || kept[shards[1].file]) fail(`want only the shard before the full quota kept: ${Object.keys(kept)}`);
    const inspected = await call(page, 'inspect', { repo });
    if (inspected.value?.cached !== false) fail(`an incomplete package counts as downloaded: ${JSON.stringify(inspected).slice(0, 300)}`);
    await setQuota();
    hub.requests.length = 0;
    const again = await call(page, 'prepare', { repo });
    if (again.error) fail(`the download after the quota was raised: ${again.error.message}`);
    const asked = hub.requests.filter((q) => q.origin === 'lfs' && q.method === 'GET').map((q) => decodeURIComponent(q.path).match(/file=([^&]+)/)?.[1]);
    if (asked.includes(shards[0].file) || !asked.includes(shards[1].file)) fail(`the resumed download asked for ${asked}: want every shard but the kept ${shards[0].file}`);
    sameBytes('a hub package download resumed after the quota was raised', await cached(base), files(reference));
    ended(`quota lowered in the middle of a hub package download: QuotaExceeded naming ${mb(needed)} still needed, no manifest and no partial entry kept, the package not counted as downloaded; with the quota raised only the ${asked.length} shards after the kept one were fetched`);

    // b. A package by URL (the wasm loader, load_package): room for about a shard and a half.
    const ubase = `${url}${pkgPath('quota')}`;
    await setQuota((await usage()) + shards[0].bytes + (shards[1].bytes >> 1));
    const first = await loadPackage(ubase);
    const warning = first.cache_warning ?? '';
    const keptNow = Object.keys(await cached(ubase));
    const keptShards = shards.filter((s) => keptNow.includes(s.file));
    if (keptNow.includes('manifest.json')) fail('the loader cached a manifest for an incomplete package');
    if (!keptShards.length || keptShards.length === shards.length || keptShards.some((s, i) => s !== shards[i])) fail(`want the first shards kept, then none: ${keptNow}`);
    const still = total - keptShards.reduce((a, s) => a + s.bytes, 0) + manifestBytes;
    // "(N MB free)" appears only where the browser's estimate already agrees with the quota.
    const figure = new RegExp(`storage for this site is full( \\([\\d.]+ MB free\\))?: keeping this model needs ${mb(still)} more\\. Free ${mb(still)} in the site settings or delete cached models`);
    if (!figure.test(warning)) fail(`the loader's quota warning does not match ${figure}: ${warning}`);
    console.log(`a quota that runs out during a load by URL (the model still loads): ${warning}`);
    await setQuota();
    requests.length = 0;
    const second = await loadPackage(ubase);
    const refetched = served('quota').filter((f) => shards.some((s) => s.file === f)).sort();
    const missing = shards.filter((s) => !keptNow.includes(s.file)).map((s) => s.file).sort();
    if (JSON.stringify(refetched) !== JSON.stringify(missing) || second.shards_from_cache !== keptShards.length) fail(`after the quota was raised the loader fetched ${refetched}, want ${missing}`);
    sameBytes('a load by URL after the quota was raised', await cached(ubase), weights(path.join(work, 'quota')));
    ended(`quota running out during a load by URL: the model loaded, the warning names ${mb(still)} still needed, ${keptShards.length} whole shard(s) kept and no manifest; with room again only the ${missing.length} missing shards were fetched`);
  }

  // ---- 4. connections cut at random offsets ----------------------------------------------------
  if (want('4')) {
    const base = `${url}${pkgPath('drops')}`;
    chaos.cuts.length = 0;
    chaos.drop = { prefix: pkgPath('drops'), rate: 0.7, random };
    let report;
    try { report = await loadPackage(base); } finally { chaos.drop = null; }
    const cuts = chaos.cuts.map((c) => `${c.path.split('/').pop()}@${c.at}/${c.of}${c.range ? ` (${c.range})` : ''}`);
    console.log(`cuts: ${cuts.join(', ')}`);
    if (!cuts.length) fail(`no connection was cut (seed ${SEED}): the test proved nothing`);
    if (report.resumes < chaos.cuts.filter((c) => shards.some((s) => c.path.endsWith(s.file))).length) fail(`fewer resumes than cuts on shards: ${JSON.stringify(report)}`);
    sameBytes('a package downloaded through cut connections', await cached(base), weights(path.join(work, 'drops')));
    ended(`network cut ${cuts.length} times at random offsets (seed ${SEED}) over the manifest and ${shards.length} shards: ${report.resumes} resumes of shards, every cached file's SHA-256 right`);
  }

  // ---- 5. a reload during a conversion -----------------------------------------------------------
  if (want('5')) {
    const repo = 'Test/reload';
    const size = fs.statSync(path.join(fixture, 'model.safetensors')).size;
    const stallAt = Math.floor(size * (0.3 + 0.4 * random()));
    hub.faults.push({ match: `repo=${repo}`, stallAfter: stallAt, ms: 8000 });
    await open();
    await page.evaluate((a) => { window.__events.length = 0; window.__call('prepare', a); }, { repo, endpoint: hub.url, maxShard: SHARD_KIB * 1024 });
    await page.waitForFunction((n) => window.__events.some((e) => e.kind === 'hub' && e.phase === 'convert' && e.done >= n), stallAt, { timeout: 120_000, polling: 10 });
    await new Promise((r) => setTimeout(r, 300)); // the part before the stall is stored
    await open(); // the reload
    const base = `${hub.url}/${repo}/resolve/${hub.commit(repo)}/.spatial-mllm/`;
    const saved = (await page.evaluate((b) => window.__state(b), base))?.files?.['model.safetensors']?.pos ?? 0;
    hub.requests.length = 0;
    const r = await call(page, 'prepare', { repo });
    if (r.error) fail(`the conversion after the reload: ${r.error.message}`);
    if (r.value.waited) fail('the reloaded tab waited for the lock of the page it replaced');
    const bodies = hub.requests.filter((q) => q.origin === 'lfs' && q.method === 'GET' && q.range?.endsWith(`-${size - 1}`)).map((q) => Number(/bytes=(\d+)-/.exec(q.range)[1]));
    console.log(`reload with the source stalled at byte ${stallAt}: ${saved} bytes stored; after it the source was read from byte ${bodies}`);
    if (!(saved > 0) || bodies.length !== 1 || bodies[0] !== saved) fail('the conversion after the reload did not resume from the last stored part');
    sameBytes('a conversion resumed after a reload', await cached(base), files(hubReference));
    ended(`reload during a conversion at byte ${stallAt} of ${size}: resumed with one request from byte ${saved} (nothing before it read again); the package is the CLI's byte for byte`);
  }

  console.log(`\nfault cases (seed ${SEED}):\n${outcomes.map((o) => `  - ${o}`).join('\n')}`);
  console.log(`faults test passed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  code = 0;
} catch (e) {
  console.error(`faults test FAILED (seed ${SEED}): ${e.stack ?? e}`);
} finally {
  await browser.close();
  server.close();
  await hub.close();
}
process.exit(code);
