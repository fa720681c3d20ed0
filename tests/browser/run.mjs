// Runs the kernel suite (built to wasm, in pkg/) inside headless Chromium on SwiftShader's
// WebGPU adapter. Fails on any failed case, on a missing adapter, on an empty report, or on a
// timeout. KERNEL_FILTER selects cases by name; KERNEL_SEED replays a seed.
import { chromium } from 'playwright-core';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const filter = process.argv[2] ?? process.env.KERNEL_FILTER ?? '';
const seed = Number(process.env.KERNEL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const timeoutMs = Number(process.env.BROWSER_TIMEOUT_MS ?? 20 * 60 * 1000);

if (!fs.existsSync(path.join(root, 'pkg/spatial_mllm_web.js'))) {
  console.error('pkg/spatial_mllm_web.js is missing: run tools/build-wasm.sh first');
  process.exit(1);
}

const { server, url } = await serve(root);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--no-sandbox'],
});
let code = 1;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[browser] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[browser error] ${e.message}`));
  console.log(`kernel suite in Chromium (seed ${seed}${filter ? `, filter ${filter}` : ''})`);
  await page.goto(`${url}/tests/browser/kernels.html?seed=${seed}&filter=${encodeURIComponent(filter)}`);
  await page.waitForFunction(() => window.__done === true, null, { timeout: timeoutMs, polling: 1000 });
  const error = await page.evaluate(() => window.__error);
  const report = await page.evaluate(() => window.__report);
  if (error) {
    console.error(`FAILED: the suite did not run: ${error}`);
  } else if (!report || report.results.length === 0) {
    console.error('FAILED: the report is empty');
  } else {
    console.log(`device: ${report.device}\npath: ${report.path}`);
    for (const r of report.results) {
      console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(28)} ${String(Math.round(r.ms)).padStart(7)} ms  ${r.detail}`);
    }
    const failed = report.results.filter((r) => !r.ok);
    console.log(`${report.results.length - failed.length} passed, ${failed.length} failed`);
    code = failed.length === 0 ? 0 : 1;
  }
} catch (e) {
  console.error(`FAILED: ${e.message}`);
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
