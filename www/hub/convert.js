// A model from the hub into Cache Storage, in the engine's worker. Two routes, chosen by what the
// repository holds:
// - a converted package (manifest.json, as `spatial-mllm convert` writes it): its shards are
//   streamed into the cache, each checked against the manifest's SHA-256;
// - an original checkpoint: converted while it streams, with the wasm engine's plan and packer
//   (the CLI's code, so the package is byte-identical to `spatial-mllm convert`'s). Each source
//   file is read once, in order, by Range requests and hashed against the hub's LFS SHA-256; each
//   part of a tensor is packed from a bounded slice of rows at a time and stored as its own cache
//   entry; once every file is verified the parts are assembled into shards, then the manifest is
//   written last. A state entry records what is done (per part, with the hash's state), so a
//   reload or a dropped connection resumes where it stopped.
// The package's base URL lies under the repository's resolve URL at the pinned commit, so a cache
// hit never mixes revisions, and the engine's loader (src/weights/http.rs) finds it all cached.
// A Web Lock named after the base URL lets one tab of the origin download a package while another
// that wants the same one waits, then finds it cached. A full quota is a `QuotaExceeded` error
// that says how much more space is needed.

import { HubError } from './hub.js';

/** The engine's package cache: the name src/weights/http.rs (CACHE_NAME) reads. */
export const PACKAGE_CACHE = 'spatial-mllm-packages-v1';
/** The CLI's default shard size (weights::manifest::DEFAULT_SHARD_BYTES). */
export const DEFAULT_SHARD_BYTES = 128 * 1024 * 1024;
/** Source bytes packed per call into wasm. */
const PACK_CHUNK = 1 << 20;

const fmt = (b) => (b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : `${(b / 1e6).toFixed(1)} MB`);

/** The checkpoint's safetensors files in the order the CLI lists them (weights::convert::shard_files). */
async function safetensorsFiles(client, repo, commit, files, signal) {
  if (files.has('model.safetensors.index.json')) {
    const index = JSON.parse(await client.text(repo, commit, 'model.safetensors.index.json', signal));
    return [...new Set(Object.values(index.weight_map ?? {}))].sort();
  }
  if (files.has('model.safetensors')) return ['model.safetensors'];
  return [...files.keys()].filter((f) => f.endsWith('.safetensors') && !f.includes('/')).sort();
}

async function cacheStore() {
  return caches.open(PACKAGE_CACHE);
}

/** The Web Lock that one tab holds while it downloads, converts or first loads the package at
 * `base` (the engine worker takes the same one around a load from the network). */
export const packageLockName = (base) => `spatial-mllm-package ${String(base).replace(/\/+$/, '')}`;

/** Run `work` holding the package's lock (at once where the browser has no Web Locks). `onWait`
 * is called when another tab holds it. `signal` stops the wait too. */
export async function withPackageLock(base, work, { signal, onWait } = {}) {
  const locks = globalThis.navigator?.locks;
  if (!locks) return work();
  const name = packageLockName(base);
  const held = { done: false, value: undefined };
  await locks.request(name, { ifAvailable: true }, async (lock) => {
    if (!lock) return;
    held.done = true;
    held.value = await work();
  });
  if (held.done) return held.value;
  onWait?.();
  return locks.request(name, { signal }, () => work());
}

/** A full quota as a named error: the space still needed and what to do. `stillNeeded`: the bytes
 * of this package not yet written (the entry that failed included). */
export async function quotaError(stillNeeded) {
  const est = await navigator.storage?.estimate?.().catch(() => null);
  // The estimate can lag behind the quota actually enforced: quote it only when it agrees.
  const free = est && est.quota - est.usage < stillNeeded ? ` (${fmt(Math.max(0, est.quota - est.usage))} free of ${fmt(est.quota)})` : '';
  return new HubError('QuotaExceeded', `the browser's storage for this site is full${free}: this model needs about ${fmt(stillNeeded)} more. Free ${fmt(stillNeeded)} in the site settings or delete downloaded models, then load it again: what is done is kept and it resumes where it stopped`);
}

/** cache.put that names a full quota and says what to do. Cache Storage commits an entry only
 * once its body has ended, so a put that fails leaves no half-written entry behind. */
async function put(cache, url, response, stillNeeded) {
  try {
    await cache.put(url, response);
  } catch (e) {
    if (e?.name === 'QuotaExceededError' || /quota/i.test(e?.message ?? '')) throw await quotaError(typeof stillNeeded === 'function' ? stillNeeded() : stillNeeded);
    throw e;
  }
}

const readJson = async (cache, url) => {
  const r = await cache.match(url);
  return r ? r.json() : null;
};

/** What the repository holds, without downloading weights: the route, the model kind, sizes and the (planned) manifest. */
export async function inspect(client, wasm, repo, revision = 'main', { signal, maxShard = DEFAULT_SHARD_BYTES } = {}) {
  const { commit, files } = await client.resolve(repo, revision, signal);
  const cache = await cacheStore();
  if (files.has('manifest.json')) {
    const base = client.fileUrl(repo, commit, '');
    const cached = await cache.match(`${base}manifest.json`);
    const manifestJson = cached ? await cached.text() : await client.text(repo, commit, 'manifest.json', signal);
    let m;
    try { m = JSON.parse(manifestJson); } catch { throw new HubError('PackageError', `${repo}'s manifest.json is not JSON: is it a package written by spatial-mllm convert?`); }
    const bytes = (m.shards ?? []).reduce((a, s) => a + s.bytes, 0);
    return { repo, revision, commit, route: 'package', kind: m.model_kind, base, manifestJson, downloadBytes: bytes, packageBytes: bytes, cached: !!cached };
  }
  const names = await safetensorsFiles(client, repo, commit, files, signal);
  if (!names.length) {
    const others = [...files.keys()].filter((f) => /\.(bin|pt|pth|gguf)$/.test(f));
    throw new HubError('UnsupportedModel', `${repo} has no .safetensors weights${others.length ? ` (only ${others.slice(0, 3).join(', ')})` : ''}: this app converts safetensors checkpoints of Spatial-MLLM, Qwen2.5-VL or VGGT`);
  }
  const config = files.has('config.json') ? await client.text(repo, commit, 'config.json', signal) : '{}';
  const headers = [];
  for (const name of names) {
    const first = await client.range(repo, commit, name, 0, 8, signal);
    const n = wasm.safetensors_header_len(name, first);
    headers.push({ name, header: await client.range(repo, commit, name, 8, 8 + n, signal) });
  }
  let plan;
  try {
    plan = new wasm.ConversionPlan(repo, headers, config, files.has('tokenizer.json'), '', maxShard);
  } catch (e) {
    if (/unsupported architecture/.test(e.message)) throw new HubError('UnsupportedModel', e.message);
    throw e;
  }
  for (const s of plan.sources()) {
    const listed = files.get(s.name)?.size;
    if (listed != null && listed !== s.size) {
      plan.free();
      throw new HubError('IntegrityError', `${repo}: ${s.name} is ${listed} bytes on the hub but its header describes ${s.size}: the file is damaged or incomplete there`);
    }
  }
  const base = client.fileUrl(repo, commit, '.spatial-mllm/');
  const cached = await cache.match(`${base}manifest.json`);
  // Planned: the real one's hashes are known once the shards are written.
  const manifestJson = cached ? await cached.text() : plan.manifest_json(plan.shards().map(() => '0'.repeat(64)));
  const downloadBytes = names.reduce((a, n) => a + (files.get(n)?.size ?? 0), 0) || plan.source_bytes();
  return { repo, revision, commit, route: 'convert', kind: plan.kind(), base, manifestJson, downloadBytes, packageBytes: plan.package_bytes(), cached: !!cached, plan, files, names };
}

/** Fetch (and convert) into the cache; resolves to {base, kind, commit, bytes, route, waited}
 * (waited: another tab held the package's lock first; when it finished the package, nothing was
 * downloaded here). `onProgress({phase, done, total, file})`. */
export async function prepare(client, wasm, repo, revision = 'main', { onProgress = () => {}, signal, maxShard } = {}) {
  const info = await inspect(client, wasm, repo, revision, { signal, maxShard });
  const result = { base: info.base, kind: info.kind, commit: info.commit, bytes: info.packageBytes, route: info.route, waited: false };
  if (info.cached) {
    info.plan?.free();
    return result;
  }
  try {
    await withPackageLock(info.base, async () => {
      // Another tab may have finished this package while this one waited for the lock.
      if (await (await cacheStore()).match(`${info.base}manifest.json`)) return;
      if (info.route === 'package') await downloadPackage(client, wasm, info, onProgress, signal);
      else await convertCheckpoint(client, wasm, info, onProgress, signal);
    }, {
      signal,
      onWait: () => {
        result.waited = true;
        onProgress({ phase: 'waiting for another tab that is preparing this model', done: 0, total: info.packageBytes });
      },
    });
  } finally {
    info.plan?.free();
  }
  return result;
}

/** Stream one file (or a range) into `sink(chunk)`. */
async function pump(iter, sink) {
  for await (const chunk of iter) await sink(chunk);
}

async function downloadPackage(client, wasm, info, onProgress, signal) {
  const { repo, commit, base } = info;
  const m = JSON.parse(info.manifestJson);
  const cache = await cacheStore();
  const total = info.packageBytes;
  let done = 0;
  let kept = 0; // bytes of the shards in the cache
  const stillNeeded = () => total - kept + info.manifestJson.length;
  for (const s of m.shards) {
    const url = `${base}${s.file}`;
    if (await cache.match(url)) { done += s.bytes; kept += s.bytes; continue; } // the engine verifies cached shards again
    for (let attempt = 0; ; attempt++) {
      const hasher = new wasm.Sha256Stream();
      const start = done;
      let failure = null;
      const iter = client.stream(repo, commit, s.file, 0, s.bytes, signal);
      const body = new ReadableStream({
        async pull(ctrl) {
          try {
            const { done: end, value } = await iter.next();
            if (end) return ctrl.close();
            hasher.update(value);
            done += value.length;
            onProgress({ phase: 'download', done, total, file: s.file });
            ctrl.enqueue(value);
          } catch (e) { failure = e; ctrl.error(e); }
        },
        cancel() { iter.return(); },
      });
      try { await put(cache, url, new Response(body), stillNeeded); } catch (e) { throw failure ?? e; }
      const got = hasher.hex();
      hasher.free();
      if (got === s.sha256) { kept += s.bytes; break; }
      await cache.delete(url);
      done = start;
      if (attempt === 1) throw new HubError('IntegrityError', `${repo}: ${s.file} arrived twice with SHA-256 ${got}, not the manifest's ${s.sha256}: the repository or a proxy serves damaged data; nothing of it was kept`);
    }
  }
  if (m.tokenizer) await put(cache, `${base}${m.tokenizer}`, new Response(await client.text(repo, commit, m.tokenizer, signal)), stillNeeded);
  await put(cache, `${base}manifest.json`, new Response(info.manifestJson), stillNeeded);
}

async function convertCheckpoint(client, wasm, info, onProgress, signal) {
  const { repo, commit, base, plan, files } = info;
  const cache = await cacheStore();
  const stateUrl = `${base}__state.json`;
  const partUrl = (id) => `${base}__part-${id}`;
  const parts = plan.parts();
  const shards = plan.shards();
  const sources = plan.sources();
  const sourceBytes = plan.source_bytes();
  const total = sourceBytes + plan.package_bytes();
  // Storage at the peak: the package, plus one shard's parts until that shard is assembled.
  const need = plan.package_bytes() + Math.max(...shards.map((s) => s.bytes));
  // A state from another plan (another shard size, engine version) is not resumed.
  const key = `${plan.kind()}:${parts.length}:${shards.map((s) => s.bytes).join(',')}`;
  let state = await readJson(cache, stateUrl);
  if (!state || state.key !== key) {
    for (const req of await cache.keys()) if (req.url.startsWith(`${base}__part-`)) await cache.delete(req);
    state = { key, files: {}, shards: [] };
  }
  // What is still to be written: the peak less the assembled shards and the parts kept so far.
  const stillNeeded = () => {
    const assembled = shards.slice(0, state.shards.length).reduce((a, s) => a + s.bytes, 0);
    const kept = parts.filter((p) => p.shard >= state.shards.length && (state.files[sources[p.file].name]?.pos ?? 0) >= p.end).reduce((a, p) => a + p.bytes, 0);
    return Math.max(0, need - assembled - kept);
  };
  const save = () => put(cache, stateUrl, new Response(JSON.stringify(state)), stillNeeded);
  const progressDone = () => sources.reduce((a, s) => a + (state.files[s.name]?.pos ?? 0), 0)
    + shards.slice(0, state.shards.length).reduce((a, s) => a + s.bytes, 0);
  let done = progressDone();

  for (const [fi, src] of sources.entries()) {
    const lfs = files.get(src.name)?.sha256 ?? null;
    for (let attempt = 0; ; attempt++) {
      const ok = await convertFile(fi, src, lfs);
      if (ok) break;
      // The file's bytes did not hash to the hub's LFS SHA-256: drop what came from it.
      for (const p of parts) if (p.file === fi) await cache.delete(partUrl(p.id));
      state.files[src.name] = { pos: 0, hash: null };
      await save();
      done = progressDone();
      if (attempt === 1) {
        throw new HubError('IntegrityError', `${repo}: ${src.name} was downloaded twice and its SHA-256 did not match the hub's (${lfs}) either time: the hub or a proxy serves damaged data. Nothing converted from it was kept; try again later`);
      }
    }
  }

  async function convertFile(fi, src, lfs) {
    const st = state.files[src.name] ?? { pos: 0, hash: null };
    if (st.verified) return true;
    const hasher = st.hash ? wasm.Sha256Stream.restore(st.hash) : new wasm.Sha256Stream();
    // The file in order: its parts, and the bytes between them (the header, unused tensors),
    // which are read only to be hashed.
    const segments = [];
    let at = 0;
    for (const p of parts.filter((q) => q.file === fi).sort((a, b) => a.start - b.start)) {
      if (p.start > at) segments.push({ start: at, end: p.start });
      segments.push({ start: p.start, end: p.end, part: p });
      at = p.end;
    }
    if (at < src.size) segments.push({ start: at, end: src.size });
    let pos = st.pos;
    // One request for the rest of the file (resumed by the client if it drops), cut at the
    // segments' boundaries.
    const cursor = new ByteCursor(client.stream(repo, commit, src.name, pos, src.size, signal));
    try {
      for (const seg of segments) {
        if (seg.end <= pos) continue;
        const bytes = cursor.take(seg.end - pos);
        const count = (n) => { done += n; onProgress({ phase: 'convert', done, total, file: src.name }); };
        if (!seg.part) {
          await pump(bytes, (c) => { hasher.update(c); count(c.length); });
        } else {
          const packer = plan.packer(seg.part.id);
          let failure = null;
          const body = packedBody(bytes, packer, hasher, count, (e) => { failure = e; });
          try { await put(cache, partUrl(seg.part.id), new Response(body), stillNeeded); } catch (e) { throw failure ?? e; }
        }
        pos = seg.end;
        state.files[src.name] = { pos, hash: hasher.state() };
        await save();
      }
    } finally {
      cursor.close();
    }
    const got = hasher.hex();
    hasher.free();
    if (lfs && got !== lfs) return false;
    state.files[src.name] = { pos, verified: true };
    await save();
    return true;
  }

  for (const [i, shard] of shards.entries()) {
    if (i < state.shards.length) continue;
    const hasher = new wasm.Sha256Stream();
    const queue = [plan.shard_header(i), ...parts.filter((p) => p.shard === i).map((p) => p.id)];
    let reader = null;
    let failure = null;
    const body = new ReadableStream({
      async pull(ctrl) {
        try {
          for (;;) {
            if (reader) {
              const { done: end, value } = await reader.read();
              if (!end) {
                hasher.update(value);
                done += value.length;
                onProgress({ phase: 'assemble', done, total, file: shard.file });
                return ctrl.enqueue(value);
              }
              reader = null;
            }
            if (!queue.length) return ctrl.close();
            const next = queue.shift();
            if (next instanceof Uint8Array) {
              hasher.update(next);
              return ctrl.enqueue(next);
            }
            const r = await cache.match(partUrl(next));
            if (!r) throw new HubError('PackageError', `part ${next} of ${repo}'s conversion is no longer in the cache (site data cleared?): load again to convert it anew`);
            reader = r.body.getReader();
          }
        } catch (e) { failure = e; ctrl.error(e); }
      },
    });
    try { await put(cache, `${base}${shard.file}`, new Response(body), stillNeeded); } catch (e) { throw failure ?? e; }
    state.shards.push(hasher.hex());
    hasher.free();
    await save();
    for (const p of parts) if (p.shard === i) await cache.delete(partUrl(p.id));
  }
  if (files.has('tokenizer.json')) {
    await put(cache, `${base}tokenizer.json`, new Response(await client.text(repo, commit, 'tokenizer.json', signal)), stillNeeded);
  }
  await put(cache, `${base}manifest.json`, new Response(plan.manifest_json(state.shards)), stillNeeded);
  await cache.delete(stateUrl);
}

/** Sequential reads from an async iterator of byte chunks: `take(n)` yields exactly the next n bytes. */
class ByteCursor {
  constructor(iter) {
    this.iter = iter;
    this.rest = null;
  }

  async *take(n) {
    while (n > 0) {
      let c = this.rest;
      this.rest = null;
      if (!c) {
        const { done, value } = await this.iter.next();
        if (done) throw new HubError('HubError', `a file ended ${n} bytes early`);
        c = value;
      }
      if (c.length > n) {
        this.rest = c.subarray(n);
        c = c.subarray(0, n);
      }
      n -= c.length;
      yield c;
    }
  }

  close() {
    this.iter.return?.();
  }
}

/** A part's packed bytes as a stream: source rows hashed, gathered into whole rows and packed by wasm. */
function packedBody(iter, packer, hasher, count, onFailure) {
  const row = packer.source_row_bytes();
  const step = Math.max(1, Math.floor(PACK_CHUNK / row)) * row;
  let pending = [];
  let pendingBytes = 0;
  const take = () => {
    const joined = new Uint8Array(pendingBytes);
    let at = 0;
    for (const c of pending) { joined.set(c, at); at += c.length; }
    return joined;
  };
  return new ReadableStream({
    async pull(ctrl) {
      try {
        for (;;) {
          const { done, value } = await iter.next();
          if (done) {
            if (pendingBytes) ctrl.enqueue(packer.push(take()));
            ctrl.enqueue(packer.finish());
            packer.free();
            return ctrl.close();
          }
          hasher.update(value);
          count(value.length);
          pending.push(value);
          pendingBytes += value.length;
          if (pendingBytes >= step) {
            const all = take();
            const n = Math.floor(all.length / row) * row;
            pending = [all.slice(n)];
            pendingBytes = all.length - n;
            return ctrl.enqueue(packer.push(all.subarray(0, n)));
          }
        }
      } catch (e) {
        onFailure(e);
        ctrl.error(e);
      }
    },
    cancel() { iter.return(); },
  });
}
