// The browser package loader against a local HTTP server, in headless Chromium:
// 1. a first load whose shard download is cut halfway resumes with a Range request and verifies;
// 2. a reload is served entirely from Cache Storage: not one request reaches the server;
// 3. a corrupted shard fails with a SHA-256 error naming the file; 4. an HTTP error is reported.
// The packages are written by the native CLI (`spatial-mllm convert --random`).
import { browserTest, echoingPage } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'target/release/spatial-mllm');
const fixtures = path.join(root, 'target/browser-fixtures');
const fail = (msg) => {
  throw new Error(msg);
};

fs.rmSync(fixtures, { recursive: true, force: true });
for (const name of ['good', 'corrupt']) {
  execFileSync(cli, ['convert', '--random', 'tests/fixtures/tiny-spatial-mllm-config.json', `${fixtures}/${name}`,
    '--kind', 'spatial-mllm-v1.1', '--shard-kib', '256'], { cwd: root, stdio: 'inherit' });
}
const manifest = JSON.parse(fs.readFileSync(`${fixtures}/good/manifest.json`, 'utf8'));
if (manifest.shards.length < 2) fail(`want a multi-shard package, got ${manifest.shards.length} shard(s)`);
const bad = `${fixtures}/corrupt/${manifest.shards[1].file}`;
const bytes = fs.readFileSync(bad);
bytes[bytes.length >> 1] ^= 0x20;
fs.writeFileSync(bad, bytes);

await browserTest(root, async ({ browser, url, requests, faults }) => {
  const page = await echoingPage(browser);
  async function load(base, clear = false) {
    await page.goto(`${url}/tests/browser/package.html?base=${encodeURIComponent(base)}${clear ? '&clear=1' : ''}`);
    await page.waitForFunction(() => window.__done === true, null, { timeout: 300_000, polling: 200 });
    return page.evaluate(() => ({ report: window.__report, error: window.__error, progress: window.__progress }));
  }
  const base = '/target/browser-fixtures/good';
  const shard0 = `${base}/${manifest.shards[0].file}`;
  faults.set(shard0, { cutAfter: Math.floor(manifest.shards[0].bytes / 2) });
  requests.length = 0;
  const first = await load(`${url}${base}`, true);
  if (first.error) fail(`first load: ${first.error}`);
  const r = first.report;
  console.log('first load:', JSON.stringify(r));
  if (r.shards_from_network !== manifest.shards.length || r.shards_from_cache !== 0) fail('first load must come from the network');
  if (r.resumes < 1 || !requests.some((q) => q.path === shard0 && q.range)) fail('the cut download was not resumed with a Range request');
  if (r.cache_warning) fail(`cache warning: ${r.cache_warning}`);
  if (first.progress.length < manifest.shards.length) fail('too few progress events');

  requests.length = 0;
  const second = await load(`${url}${base}`);
  if (second.error) fail(`second load: ${second.error}`);
  console.log('second load:', JSON.stringify(second.report));
  const toPackage = requests.filter((q) => q.path.startsWith(base));
  if (toPackage.length) fail(`the second load made ${toPackage.length} network request(s): ${JSON.stringify(toPackage)}`);
  if (!second.report.manifest_from_cache || second.report.shards_from_cache !== manifest.shards.length) fail('the second load was not served from the cache');

  const corrupt = await load(`${url}/target/browser-fixtures/corrupt`);
  console.log('corrupt:', corrupt.error);
  if (!corrupt.error || !/SHA-256/.test(corrupt.error) || !corrupt.error.includes(manifest.shards[1].file)) fail('a corrupt shard was not reported');

  faults.set('/target/browser-fixtures/missing/manifest.json', { status: 503 });
  const missing = await load(`${url}/target/browser-fixtures/missing`);
  console.log('http error:', missing.error);
  if (!missing.error || !/503/.test(missing.error)) fail('an HTTP error was not reported');
  console.log('package loader: all checks passed');
});
