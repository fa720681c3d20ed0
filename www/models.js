// Which models the app offers, what this browser's GPU can do before anything is downloaded, and
// the packages kept in Cache Storage (the wasm loader's cache, src/weights/http.rs).

export const PACKAGE_CACHE = 'spatial-mllm-packages-v1';

/** The bundled demo and the user's own converted packages (a model package, and optionally a
 * VGGT package with the point / camera heads for space-aware sampling and the 3D view). */
export const DEMO = {
  id: 'demo',
  label: 'Tiny demo (bundled, random weights: answers are meaningless, everything else is real)',
  model: new URL('./models/demo/model/', import.meta.url).href,
  sampler: new URL('./models/demo/sampler/', import.meta.url).href,
};

export function customModel(modelUrl, samplerUrl) {
  const abs = (u) => (u ? new URL(u.endsWith('/') ? u : `${u}/`, location.href).href : null);
  return { id: 'custom', label: modelUrl, model: abs(modelUrl), sampler: abs(samplerUrl) };
}

export const fmtBytes = (b) => {
  if (!Number.isFinite(b)) return '?';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
  return `${b.toFixed(b < 10 && i > 0 ? 1 : 0)} ${u[i]}`;
};

/** The package's manifest (a few KB): its kind, config and total download size. */
export async function fetchManifest(base) {
  const url = new URL('manifest.json', base).href;
  let res;
  try {
    res = (await caches.open(PACKAGE_CACHE).then((c) => c.match(url))) ?? (await fetch(url));
  } catch (e) {
    throw new Error(`could not reach ${url} (${e.message}); check the address and that the server allows this page (CORS)`);
  }
  if (!res.ok) throw new Error(`${url} answered HTTP ${res.status}: is this the folder written by \`spatial-mllm convert\`?`);
  const text = await res.text();
  let m;
  try { m = JSON.parse(text); } catch { throw new Error(`${url} is not a package manifest (not JSON)`); }
  if (!m.model_kind || !Array.isArray(m.shards)) throw new Error(`${url} is not a package manifest (no model_kind / shards)`);
  return { text, kind: m.model_kind, bytes: m.shards.reduce((a, s) => a + s.bytes, 0), config: m.config };
}

/**
 * What this browser can do, before any download: WebGPU, the adapter, shader-f16, the limits that
 * bound the largest activation, and a verdict for `need` ({largest_buffer_bytes, weight_bytes,
 * activation_bytes, download_bytes}) when given. Never throws: a missing piece is the verdict.
 */
export async function checkCapabilities(need = null) {
  const out = { webgpu: !!globalThis.navigator?.gpu, verdict: 'ok', notes: [] };
  if (!out.webgpu) {
    out.verdict = 'cannot';
    out.notes.push('This browser has no WebGPU. Use a recent Chrome or Edge (113+), Safari 26+, or Firefox 141+ on Windows; on Linux, Chrome may need chrome://flags/#enable-unsafe-webgpu.');
    return out;
  }
  let adapter = null;
  try { adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }); } catch { /* below */ }
  if (!adapter) {
    out.verdict = 'cannot';
    out.notes.push('WebGPU is present but gave no GPU adapter (blocklisted driver, or GPU access disabled). Update the graphics driver or check chrome://gpu.');
    return out;
  }
  const info = adapter.info ?? {};
  out.adapter = [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' ') || 'unnamed adapter';
  out.fallback = !!(info.isFallbackAdapter ?? adapter.isFallbackAdapter);
  out.f16 = adapter.features.has('shader-f16');
  out.limits = {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
    maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
  };
  if (out.fallback) {
    out.verdict = 'slow';
    out.notes.push('This is a software (CPU) adapter: the tiny demo runs, a real 5 B model would take hours per answer.');
  }
  if (!out.f16) {
    if (out.verdict === 'ok') out.verdict = 'slow';
    out.notes.push('No shader-f16: activations run in f32 (about twice the activation memory and slower).');
  }
  if (need) {
    const limit = Math.min(out.limits.maxStorageBufferBindingSize, out.limits.maxBufferSize);
    if (need.largest_buffer_bytes > limit) {
      out.verdict = 'cannot';
      out.notes.push(`Its largest buffer is ${fmtBytes(need.largest_buffer_bytes)} but this GPU binds at most ${fmtBytes(limit)}: choose fewer frames.`);
    }
    const total = need.weight_bytes + need.activation_bytes;
    out.notes.push(`It needs about ${fmtBytes(total)} of GPU memory (weights ${fmtBytes(need.weight_bytes)}, activations ${fmtBytes(need.activation_bytes)}). Browsers do not report GPU memory, so this cannot be checked in advance: a GPU with less stops with an out-of-memory message.`);
    if (navigator.deviceMemory && navigator.deviceMemory * 1e9 < total) {
      out.notes.push(`This device reports about ${navigator.deviceMemory} GB of RAM, less than the model needs: it will probably not fit.`);
      if (out.verdict === 'ok') out.verdict = 'doubtful';
    }
    if (need.download_bytes && navigator.storage?.estimate) {
      const { usage = 0, quota = 0 } = await navigator.storage.estimate();
      if (quota && quota - usage < need.download_bytes) {
        out.notes.push(`Only ${fmtBytes(quota - usage)} of storage is free for this site; the ${fmtBytes(need.download_bytes)} download will run but cannot be cached for next time.`);
      }
    }
  }
  return out;
}

/** Packages in the cache: [{base, bytes, files, complete}] (complete = its manifest is cached,
 * which the loader stores only after every shard was verified). */
export async function listCachedPackages() {
  if (!globalThis.caches) return [];
  const cache = await caches.open(PACKAGE_CACHE);
  const byBase = new Map();
  for (const req of await cache.keys()) {
    const base = req.url.slice(0, req.url.lastIndexOf('/') + 1);
    const p = byBase.get(base) ?? { base, bytes: 0, files: 0, complete: false };
    const res = await cache.match(req);
    p.bytes += res ? (await res.blob()).size : 0;
    p.files += 1;
    if (req.url.endsWith('/manifest.json')) p.complete = true;
    byBase.set(base, p);
  }
  return [...byBase.values()].sort((a, b) => b.bytes - a.bytes);
}

export async function deleteCachedPackage(base) {
  const cache = await caches.open(PACKAGE_CACHE);
  for (const req of await cache.keys()) if (req.url.startsWith(base) && !req.url.slice(base.length).includes('/')) await cache.delete(req);
}

export async function storageSummary() {
  if (!navigator.storage?.estimate) return null;
  const { usage = 0, quota = 0 } = await navigator.storage.estimate();
  const persisted = (await navigator.storage.persisted?.()) ?? false;
  return { usage, quota, persisted };
}
