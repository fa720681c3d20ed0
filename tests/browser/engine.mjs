// The web app's engine API (src/web_engine.rs) in headless Chromium on the tiny Spatial-MLLM v1.1
// fixture (converted to an f32 package by the native CLI): the reply to the fixture's question
// equals upstream's greedy reply, streamed pieces add up to it, a concurrent question is refused,
// stop() ends a reply early, and the same question asked again gives the same reply.
import { launch } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = 'target/browser-fixtures/engine-v1.1';
fs.rmSync(path.join(root, pkg), { recursive: true, force: true });
execFileSync(path.join(root, 'target/release/spatial-mllm'), ['convert', 'tests/fixtures/spatial-mllm-v1.1', pkg, '--policy', '=f32'], { cwd: root, stdio: 'inherit' });

const fail = (msg) => { throw new Error(msg); };
const { server, url } = await serve(root);
const browser = await launch();
const page = await browser.newPage();
page.on('console', (m) => console.log(`[browser] ${m.text()}`));
let code = 1;
try {
  await page.goto(`${url}/tests/browser/engine.html?package=${encodeURIComponent(`${url}/${pkg}`)}&fixture=${encodeURIComponent(`${url}/tests/fixtures/spatial-mllm-v1.1`)}`);
  await page.waitForFunction(() => window.__done === true, null, { timeout: 600_000, polling: 500 });
  const { result: r, error } = await page.evaluate(() => ({ result: window.__result, error: window.__error }));
  if (error) fail(error);
  console.log(`device: ${r.device}`);
  console.log(`reply: ${JSON.stringify(r.first)} (${r.pieces.length} pieces); upstream: ${JSON.stringify(r.want)}`);
  if (r.first !== r.want) fail('the reply differs from upstream greedy reply');
  if (r.pieces.join('') !== r.first) fail('the streamed pieces do not add up to the reply');
  if (!r.refused || !/still being answered/.test(r.refused)) fail(`a concurrent question was not refused: ${r.refused}`);
  if (typeof r.stopped !== 'string') fail('a stopped reply did not resolve');
  if (r.again !== r.first) fail('the same question asked again gave another reply');
  if (r.progress < 1) fail('no load progress was reported');
  console.log('engine API: all checks passed');
  code = 0;
} catch (e) {
  console.error(`FAILED: ${e.message}`);
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
