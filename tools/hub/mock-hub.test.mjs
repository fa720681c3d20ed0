// The mock hub's contract, through its module API: node --test tools/hub/mock-hub.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { startMockHub } from './mock-hub.mjs';

const fixture = new URL('../../tests/fixtures/qwen2.5-vl/', import.meta.url).pathname;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

test('routes, faults, auth and the request log', async () => {
  const hub = await startMockHub({
    repos: {
      'Test/qwen': { dir: fixture },
      'Test/private': { dir: fixture, token: 'hf_secret' },
      'Test/gated': { dir: fixture, gated: true, token: 'hf_ok' },
    },
    port: 0,
  });
  try {
    const commit = hub.commit('Test/qwen');
    assert.match(commit, /^[0-9a-f]{40}$/);
    assert.equal(hub.commit('Test/qwen', commit), commit);
    assert.notEqual(hub.commit('Test/private'), commit);

    let r = await fetch(`${hub.url}/api/models/Test/qwen/revision/main?blobs=true`);
    const info = await r.json();
    assert.equal(info.sha, commit);
    const st = info.siblings.find((s) => s.rfilename === 'model.safetensors');
    const weights = fs.readFileSync(fixture + 'model.safetensors');
    assert.equal(st.lfs.sha256, sha256(weights));
    assert.equal(st.size, weights.length);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');

    r = await fetch(`${hub.url}/api/models/Test/qwen/revision/${encodeURIComponent('refs/pr/1')}`);
    assert.equal(r.status, 404);
    assert.equal(r.headers.get('x-error-code'), 'RevisionNotFound');
    r = await fetch(`${hub.url}/api/models/Test/none`);
    assert.equal(r.headers.get('x-error-code'), 'RepoNotFound');

    // LFS: a redirect to the second origin, then the blob; regular files straight.
    r = await fetch(`${hub.url}/Test/qwen/resolve/${commit}/model.safetensors`, { redirect: 'manual' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('x-linked-etag'), `"${sha256(weights)}"`);
    assert.ok(r.headers.get('location').startsWith(`${hub.lfsUrl}/lfs/`));
    r = await fetch(`${hub.url}/Test/qwen/resolve/main/model.safetensors`, { headers: { Range: 'bytes=8-' } });
    assert.equal(r.status, 206);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(weights.subarray(8)));
    r = await fetch(`${hub.url}/Test/qwen/resolve/main/config.json`);
    assert.equal(r.headers.get('x-repo-commit'), commit);
    assert.equal(await r.text(), fs.readFileSync(fixture + 'config.json', 'utf8'));
    r = await fetch(`${hub.url}/Test/qwen/resolve/main/nope.json`);
    assert.equal(r.headers.get('x-error-code'), 'EntryNotFound');
    r = await fetch(`${hub.url}/Test/qwen/resolve/main/config.json`, { headers: { Range: 'bytes=99999-' } });
    assert.equal(r.status, 416);

    // Access.
    const status = async (id, token) =>
      (await fetch(`${hub.url}/api/models/${id}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} })).status;
    assert.equal(await status('Test/private'), 401);
    assert.equal(await status('Test/private', 'hf_x'), 403);
    assert.equal(await status('Test/private', 'hf_secret'), 200);
    assert.equal(await status('Test/gated', 'hf_x'), 403);
    assert.equal(await status('Test/gated', 'hf_ok'), 200);

    // Faults: status, corrupt, drop; preflights are logged and never faulted.
    hub.requests.length = 0;
    hub.faults.push({ match: 'config.json', status: 429, times: 1, retryAfter: 0 });
    r = await fetch(`${hub.url}/Test/qwen/resolve/main/config.json`, { method: 'OPTIONS' });
    assert.equal(r.status, 204);
    r = await fetch(`${hub.url}/Test/qwen/resolve/main/config.json`);
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '0');
    assert.equal(hub.faults.length, 0);
    hub.faults.push({ match: 'model.safetensors', corrupt: true, times: 1 });
    r = await fetch(`${hub.url}/Test/qwen/resolve/main/model.safetensors`);
    assert.notEqual(sha256(Buffer.from(await r.arrayBuffer())), sha256(weights));
    r = await fetch(`${hub.url}/Test/qwen/resolve/main/model.safetensors`);
    assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(weights));
    hub.faults.push({ match: 'model.safetensors', dropAfter: 1000, times: 1 });
    await assert.rejects(async () => {
      const res = await fetch(`${hub.url}/Test/qwen/resolve/main/model.safetensors`);
      await res.arrayBuffer();
    });
    assert.equal(hub.requests[0].method, 'OPTIONS');
    assert.ok(hub.requests.some((x) => x.origin === 'lfs'));
  } finally {
    await hub.close();
  }
});
