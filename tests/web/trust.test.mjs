// The pieces of the page's policy and of its device line, in Node (node --test, under a second):
// host sources (nothing but scheme, host and port reaches the policy), matching, the policy text,
// the pages' meta tags equal to the policy csp.js builds, no inline script, handler or style in the
// app's pages, and the device line as a sentence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import '../../www/csp.js';
import { deviceLine } from '../../www/engine/device-line.js';

const www = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../www');
const { DEFAULT_HOSTS, hostSource, allows, policy, hostsOf } = globalThis.AppCsp;

test('host sources: only scheme, host and port', () => {
  assert.equal(hostSource('huggingface.co'), 'https://huggingface.co');
  assert.equal(hostSource('HTTPS://Cdn.Example.com:443/'), 'https://cdn.example.com');
  assert.equal(hostSource('http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
  assert.equal(hostSource('https://*.hf.co'), 'https://*.hf.co');
  for (const bad of ['', 'https://a.b/path', 'x;y', "https://evil.com'", 'https://a.com script-src *', 'javascript:alert(1)', 'https://u:p@a.com', 'ftp://a.com', 'https://a.com?q']) {
    assert.equal(hostSource(bad), null, bad);
  }
});

test('matching a URL against host sources', () => {
  assert.ok(allows(DEFAULT_HOSTS, 'https://huggingface.co/api/models/x'));
  assert.ok(allows(DEFAULT_HOSTS, 'https://cas-bridge.xethub.hf.co/xet-bridge-us/abc'));
  assert.ok(allows(DEFAULT_HOSTS, 'https://cdn-lfs-us-1.hf.co/repos/abc'));
  assert.ok(!allows(DEFAULT_HOSTS, 'https://hf.co.evil.com/'));
  assert.ok(!allows(DEFAULT_HOSTS, 'http://huggingface.co/'));
  assert.ok(!allows(DEFAULT_HOSTS, 'https://huggingface.co:8443/'));
  assert.ok(allows(['http://127.0.0.1:8080'], 'http://127.0.0.1:8080/m/'));
  assert.ok(!allows(['http://127.0.0.1:8080'], 'http://127.0.0.1:8081/m/'));
});

test('the policy: own scripts only, wasm only where the engine runs, connect-src = self + hosts', () => {
  const page = policy(DEFAULT_HOSTS, 'page');
  assert.match(page, /script-src 'self';/);
  assert.doesNotMatch(page, /unsafe-inline|unsafe-eval'|\*;|data:|blob:/);
  assert.match(policy(DEFAULT_HOSTS, 'worker'), /script-src 'self' 'wasm-unsafe-eval';/);
  assert.deepEqual(hostsOf(policy(['https://a.example'], 'page')), ['https://a.example']);
  assert.match(policy([], 'selftest'), /connect-src 'self';/);
});

test("the pages carry csp.js's default policy and no inline script, handler or style", () => {
  const metaOf = (html) => /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html)?.[1];
  const index = fs.readFileSync(path.join(www, 'index.html'), 'utf8');
  const selftest = fs.readFileSync(path.join(www, 'selftest.html'), 'utf8');
  assert.equal(metaOf(index), policy(DEFAULT_HOSTS, 'page'));
  assert.equal(metaOf(selftest), policy([], 'selftest'));
  for (const [name, html] of [['index.html', index], ['selftest.html', selftest]]) {
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, `${name}: an inline script`);
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, `${name}: an inline handler`);
    assert.doesNotMatch(html, /<style|\sstyle\s*=/i, `${name}: an inline style`);
    assert.doesNotMatch(html, /(href|src)="(data|blob|javascript):/i, `${name}: a data:, blob: or javascript: address`);
  }
});

test('the device line is a sentence', () => {
  const sw = deviceLine({ description: '', cpu: true, f16: false, subgroups: false }, { vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true });
  assert.equal(sw, 'SwiftShader (a CPU software renderer, slow): 16-bit floats not available (32-bit activations: more memory, slower), subgroups not available');
  const nv = deviceLine({ description: 'NVIDIA GeForce RTX 4090', cpu: false, f16: true, subgroups: false }, { vendor: 'nvidia', architecture: 'lovelace' });
  assert.equal(nv, 'NVIDIA GeForce RTX 4090 (lovelace architecture): 16-bit floats available, subgroups not available');
  assert.equal(deviceLine({ description: '', cpu: false, f16: true, subgroups: true }, { vendor: 'apple', architecture: 'metal-3' }), 'Apple GPU (metal 3 architecture): 16-bit floats available, subgroups used');
  assert.match(deviceLine({ description: '', cpu: false, f16: true, subgroups: false }, {}), /^a GPU the browser does not name: /);
  assert.match(deviceLine({ description: 'llvmpipe (LLVM 15)', cpu: true, f16: false, subgroups: false }, { vendor: 'mesa' }), /^Mesa llvmpipe \(LLVM 15\) \(a CPU adapter, not a GPU: slow\): /);
  for (const line of [sw, nv]) assert.doesNotMatch(line, /BrowserWebGpu|f16=|subgroups=|driver/);
});
