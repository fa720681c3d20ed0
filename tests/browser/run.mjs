// Runs a test suite built to wasm (pkg-test/: the engine with the test suites) inside headless Chromium on SwiftShader's WebGPU
// adapter: the kernel suite, or a model's parity checks (Qwen2.5-VL against transformers, VGGT and
// Spatial-MLLM v1.0 / v1.1 against the upstream code) on its tiny fixture (converted to an f32
// package by the native CLI). Fails on any failed case, on
// a missing adapter or a suite that rejects, on an empty report, on a page crash, or on a timeout
// (never a skip).
//   node tests/browser/run.mjs [--suite kernels|qwen|vggt|spatial-v1.0|spatial-v1.1] [filter]     (or KERNEL_FILTER=...)
//   KERNEL_SEED=n replays a seed; CHROMIUM=/path/to/chrome; BROWSER_TIMEOUT_MS (default 20 min).
import { launch, executablePath } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const suiteAt = args.indexOf('--suite');
const suite = suiteAt >= 0 ? args.splice(suiteAt, 2)[1] : 'kernels';
const filter = args[0] ?? process.env.KERNEL_FILTER ?? '';
const seed = Number(process.env.KERNEL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const timeoutMs = Number(process.env.BROWSER_TIMEOUT_MS ?? 20 * 60 * 1000);

if (!Number.isSafeInteger(seed) || seed < 0) {
  console.error(`KERNEL_SEED must be a non-negative integer (got ${process.env.KERNEL_SEED})`);
  process.exit(1);
}
if (!fs.existsSync(path.join(root, 'pkg-test/spatial_mllm_web.js'))) {
  console.error('FAILED: pkg-test/spatial_mllm_web.js is missing: run tools/build-wasm.sh (or tools/build-wasm.sh test) first');
  process.exit(1);
}
if (!fs.existsSync(executablePath)) {
  console.error(`FAILED: no Chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);
  process.exit(1);
}

let query = `suite=${suite}&seed=${seed}&filter=${encodeURIComponent(filter)}`;
// Model suites: the fixture converted to an f32 package by the native CLI, loaded over HTTP.
const fixtures = { qwen: 'qwen2.5-vl', vggt: 'vggt', 'spatial-v1.0': 'spatial-mllm-v1.0', 'spatial-v1.1': 'spatial-mllm-v1.1' };
if (fixtures[suite]) {
  const pkg = `target/browser-fixtures/${fixtures[suite]}-f32`;
  fs.rmSync(path.join(root, pkg), { recursive: true, force: true });
  execFileSync(path.join(root, 'target/release/spatial-mllm'), ['convert', `tests/fixtures/${fixtures[suite]}`, pkg, '--policy', '=f32'],
    { cwd: root, stdio: 'inherit' });
  query += `&package=/${pkg}&fixture=/tests/fixtures/${fixtures[suite]}`;
} else if (suite !== 'kernels') {
  console.error(`FAILED: no suite named '${suite}' (kernels, ${Object.keys(fixtures).join(', ')})`);
  process.exit(1);
}
const replay = `KERNEL_SEED=${seed} node tests/browser/run.mjs --suite ${suite}${filter ? ` '${filter}'` : ''}`;
const { server, url } = await serve(root);
let browser;
let code = 1;
try {
  browser = await launch();
  console.log(`chromium ${browser.version()} (${executablePath})`);
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[browser] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[browser error] ${e.message}`));
  const crashed = new Promise((_, reject) => page.on('crash', () => reject(new Error('the page crashed'))));
  console.log(`${suite} suite in Chromium: seed ${seed}${filter ? `, filter '${filter}'` : ''} (replay: ${replay})`);
  const t0 = Date.now();
  await page.goto(`${url}/tests/browser/suite.html?${query}`);
  await Promise.race([
    page.waitForFunction(() => window.__done === true, null, { timeout: timeoutMs, polling: 1000 }),
    crashed,
  ]);
  const { error, report, adapter, features } = await page.evaluate(() => ({
    error: window.__error,
    report: window.__report,
    adapter: window.__adapter,
    features: window.__adapterFeatures,
  }));
  if (adapter !== undefined) console.log(`adapter (navigator.gpu): ${adapter || '(no info)'}\nadapter features: ${features}`);
  if (error) {
    console.error(`FAILED: the suite did not run: ${error}`);
  } else if (!report || !Array.isArray(report.results) || report.results.length === 0) {
    console.error(`FAILED: the report is empty${filter ? ` (no case matches '${filter}')` : ''}`);
  } else {
    console.log(`device: ${report.device}\npath: ${report.path}`);
    console.log(`${'ok'.padEnd(4)} ${'case'.padEnd(28)} ${'ms'.padStart(10)}  detail`);
    for (const r of report.results) {
      console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${String(r.name).padEnd(28)} ${String(Math.round(r.ms)).padStart(7)} ms  ${r.detail}`);
      // The kernel suite reports every row of a case: variables, max error, tolerance, ok.
      const w = Math.max(5, ...(r.rows ?? []).map((row) => row.label.length));
      for (const row of r.rows ?? []) {
        const err = row.err == null ? '-' : row.err.toExponential(2);
        console.log(`       ${row.label.padEnd(w)} ${err.padStart(9)} ${row.tol.toExponential(1).padStart(9)}  ${row.ok ? 'ok' : `FAIL ${row.detail}`}`);
      }
    }
    const rows = report.results.flatMap((r) => r.rows ?? []);
    if (rows.length) console.log(`rows: ${rows.length - rows.filter((row) => !row.ok).length} of ${rows.length} ok`);
    const failed = report.results.filter((r) => r.ok !== true);
    console.log(`${report.results.length - failed.length} passed, ${failed.length} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (failed.length) console.error(`FAILED: ${failed.map((r) => r.name).join(', ')}`);
    code = failed.length === 0 ? 0 : 1;
  }
} catch (e) {
  console.error(`FAILED: ${e.message}`);
} finally {
  await browser?.close().catch(() => {});
  server.close();
}
if (code !== 0) console.error(`replay with: ${replay}`);
process.exit(code);
