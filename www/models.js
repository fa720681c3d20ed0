// Which models the app offers, what this browser's GPU can do before anything is downloaded, and
// the packages kept in Cache Storage (the wasm loader's cache, src/weights/http.rs).

import { PACKAGE_CACHE } from './hub/convert.js';

// The engine's package cache (src/weights/http.rs reads it; hub/convert.js writes hub packages into it).
export { PACKAGE_CACHE };

/** The bundled demo and the user's own converted packages (a model package, and optionally a
 * VGGT package with the point / camera heads for space-aware sampling and the 3D view). */
export const DEMO = {
  id: 'demo',
  label: 'Tiny demo (bundled, random weights: answers are meaningless, everything else is real)',
  model: new URL('./models/demo/model/', import.meta.url).href,
  sampler: new URL('./models/demo/sampler/', import.meta.url).href,
};

/** The real checkpoints, by Hugging Face repository id. `role`: a `model` answers questions; a
 * `sampler` (VGGT with its point and camera heads) picks frames by coverage and gives the 3D view.
 * Sizes here are rough (2 bytes a parameter); the hub's exact figures replace them once checked.
 * Paper numbers: VSI-Bench average, Wu et al. 2025, Table 1 (16 frames). */
export const CATALOGUE = [
  {
    id: 'Diankun/Spatial-MLLM-v1.1-Instruct-135K', repo: 'Diankun/Spatial-MLLM-v1.1-Instruct-135K', role: 'model', kind: 'spatial-mllm-v1.1',
    label: 'Spatial-MLLM v1.1 · 135K', params: 5.3e9, approxBytes: 10.6e9, recommended: true,
    description: 'The current release: Qwen2.5-VL-3B with a VGGT spatial encoder, fine-tuned on 135K spatial questions.',
  },
  {
    id: 'Diankun/Spatial-MLLM-v1.1-Instruct-820K', repo: 'Diankun/Spatial-MLLM-v1.1-Instruct-820K', role: 'model', kind: 'spatial-mllm-v1.1',
    label: 'Spatial-MLLM v1.1 · 820K', params: 5.3e9, approxBytes: 10.6e9,
    description: 'The same architecture fine-tuned on 820K questions (adds VSI-590K and MindCube): the broadest training.',
  },
  {
    id: 'Diankun/Spatial-MLLM-subset-sft', repo: 'Diankun/Spatial-MLLM-subset-sft', role: 'model', kind: 'spatial-mllm-v1.0',
    label: 'Spatial-MLLM v1.0 (subset SFT)', params: 5.3e9, approxBytes: 10.6e9,
    description: 'The paper-era code, fine-tuned on a subset of Spatial-MLLM-120K (SFT only; the paper\'s 48.4 on VSI-Bench is its SFT + GRPO model).',
  },
  {
    id: 'Qwen/Qwen2.5-VL-3B-Instruct', repo: 'Qwen/Qwen2.5-VL-3B-Instruct', role: 'model', kind: 'qwen2.5-vl',
    label: 'Qwen2.5-VL-3B-Instruct (baseline)', params: 3.75e9, approxBytes: 7.5e9,
    description: 'The paper\'s baseline, without the spatial encoder (30.6 on VSI-Bench against Spatial-MLLM\'s 48.4).',
  },
  {
    id: 'facebook/VGGT-1B', repo: 'facebook/VGGT-1B', role: 'sampler', kind: 'vggt',
    label: 'VGGT-1B', params: 1.26e9, approxBytes: 5.0e9, recommended: true,
    description: 'Space-aware frame sampling (frames picked by how much of the room they cover) and the 3D view.',
  },
  { ...DEMO, role: 'model', kind: 'spatial-mllm-v1.1', repo: null, description: 'Bundled tiny model with random weights: works offline at once, for trying the app and for tests.' },
];

export function customModel(modelUrl, samplerUrl) {
  const abs = (u) => (u ? new URL(u.endsWith('/') ? u : `${u}/`, location.href).href : null);
  return { id: 'custom', label: modelUrl, model: abs(modelUrl), sampler: abs(samplerUrl) };
}

export const fmtBytes = (b) => {
  if (!Number.isFinite(b)) return '?';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
  // Three significant figures at most, without a trailing .0 (10.6 GB, 52 MB, 1.7 MB).
  return `${i > 0 && b < 100 ? String(Number(b.toFixed(1))) : b.toFixed(0)} ${u[i]}`;
};

export const fmtDuration = (secs) => {
  if (!Number.isFinite(secs) || secs < 0) return '?';
  const s = Math.round(secs);
  if (s < 60) return `${Math.max(s, 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
};

// ---- the hub ---------------------------------------------------------------------------------

export const HUB_DEFAULT = 'https://huggingface.co';

/** `https://host[/path]` without a trailing slash, or null when it is not an http(s) address. */
export function normaliseEndpoint(text) {
  let t = String(text).trim();
  if (t && !/^[a-z][a-z0-9+.-]*:/i.test(t)) t = `https://${t}`; // `hf-mirror.com` as people type it
  try {
    const u = new URL(t);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
    return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return null;
  }
}

/** The hub settings: the address (a `?hub=` URL parameter wins, for tests and mirrors, and is not
 * saved) and the access token, both kept in this browser's localStorage only. */
export function hubSettings() {
  const fromUrl = normaliseEndpoint(new URLSearchParams(location.search).get('hub') ?? '');
  const saved = normaliseEndpoint(localStorage.getItem('hubEndpoint') ?? '');
  return { endpoint: fromUrl ?? saved ?? HUB_DEFAULT, fromUrl: !!fromUrl, token: localStorage.getItem('hubToken') ?? '' };
}

export function saveHubSettings({ endpoint, token }) {
  if (endpoint !== undefined) {
    const e = normaliseEndpoint(endpoint);
    if (!e || e === HUB_DEFAULT) localStorage.removeItem('hubEndpoint');
    else localStorage.setItem('hubEndpoint', e);
  }
  if (token !== undefined) {
    if (token.trim()) localStorage.setItem('hubToken', token.trim());
    else localStorage.removeItem('hubToken');
  }
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

/** What a user types for a repository: `owner/name`, `owner/name@revision`, or the repository's
 * page address (`https://huggingface.co/owner/name[/tree/revision]`). {repo, revision} or null. */
export function parseRepoInput(text, revisionText = '') {
  let t = String(text).trim();
  let revision = String(revisionText).trim();
  const page = /^https?:\/\/[^/]+\/([^/]+\/[^/?#]+)(?:\/(?:tree|blob|resolve)\/([^/?#]+))?/.exec(t);
  if (page) {
    t = page[1];
    revision ||= page[2] ? decodeURIComponent(page[2]) : '';
  }
  const at = t.indexOf('@');
  if (at > 0) {
    revision ||= t.slice(at + 1);
    t = t.slice(0, at);
  }
  if (!REPO_ID.test(t)) return null;
  return { repo: t, revision: revision || 'main' };
}

/** A hub package's base URL (`{endpoint}/{owner}/{name}/resolve/{commit}/…`) as {repo, commit,
 * endpoint, sub}; null for any other package URL. */
export function hubPackageInfo(base) {
  const m = /^(https?:\/\/.+?)\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.*)$/.exec(base);
  if (!m) return null;
  return { endpoint: m[1], repo: decodeURIComponent(m[2]), commit: decodeURIComponent(m[3]), sub: m[4] };
}

/** The package's manifest (a few KB): its kind, config and total download size. `cacheOnly`: from
 * Cache Storage or not at all (a hub package converted here has no manifest on the network). */
export async function fetchManifest(base, { cacheOnly = false } = {}) {
  const url = new URL('manifest.json', base).href;
  let res;
  try {
    res = (await caches.open(PACKAGE_CACHE).then((c) => c.match(url))) ?? (cacheOnly ? null : await fetch(url));
    if (!res) throw new Error('it is not in this browser\'s cache');
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
 * activation_bytes, download_bytes, frames, storage_bytes (what must fit in the cache)}) when given. Never throws: a missing piece is the verdict.
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
    out.notes.push(`${need.frames ? `With ${need.frames} frames it` : 'It'} needs about ${fmtBytes(total)} of GPU memory (weights ${fmtBytes(need.weight_bytes)}, activations ${fmtBytes(need.activation_bytes)}). Browsers do not report GPU memory, so this cannot be checked in advance: a GPU with less stops with an out-of-memory message.`);
    if (navigator.deviceMemory && navigator.deviceMemory * 1e9 < total) {
      out.notes.push(`This device reports about ${navigator.deviceMemory} GB of RAM, less than the model needs: it will probably not fit.`);
      if (out.verdict === 'ok') out.verdict = 'doubtful';
    }
    if (need.storage_bytes && navigator.storage?.estimate) {
      // A hub model is written to the cache as it is downloaded and converted: it must fit.
      const { usage = 0, quota = 0 } = await navigator.storage.estimate();
      if (quota && quota - usage < need.storage_bytes) {
        out.notes.push(`It needs ${fmtBytes(need.storage_bytes)} of this browser's storage but only ${fmtBytes(quota - usage)} is free for this site: delete downloaded models (below) or free disk space first.`);
        if (out.verdict === 'ok' || out.verdict === 'slow') out.verdict = 'doubtful';
      }
    } else if (need.download_bytes && navigator.storage?.estimate) {
      const { usage = 0, quota = 0 } = await navigator.storage.estimate();
      if (quota && quota - usage < need.download_bytes) {
        out.notes.push(`Only ${fmtBytes(quota - usage)} of storage is free for this site; the ${fmtBytes(need.download_bytes)} download will run but cannot be cached for next time.`);
      }
    }
  }
  return out;
}

/** Packages in the cache: [{base, bytes, files, complete, hub}] (complete = its manifest is cached,
 * which the loader stores only after every shard was verified). A hub package is everything under
 * `{endpoint}/{repo}/resolve/{commit}/` (hub: {repo, commit, endpoint}), whatever its folders. */
export async function listCachedPackages() {
  if (!globalThis.caches) return [];
  const cache = await caches.open(PACKAGE_CACHE);
  const byBase = new Map();
  for (const req of await cache.keys()) {
    const hub = hubPackageInfo(req.url);
    const base = hub ? req.url.slice(0, req.url.length - hub.sub.length) : req.url.slice(0, req.url.lastIndexOf('/') + 1);
    const p = byBase.get(base) ?? { base, bytes: 0, files: 0, complete: false, hub: hub && { repo: hub.repo, commit: hub.commit, endpoint: hub.endpoint } };
    const res = await cache.match(req);
    p.bytes += res ? (await res.blob()).size : 0;
    p.files += 1;
    if (req.url.endsWith('/manifest.json')) p.complete = true;
    byBase.set(base, p);
  }
  return [...byBase.values()].sort((a, b) => b.bytes - a.bytes);
}

/** Deletes a package's files: those directly under `base`, or for a hub package everything under
 * its commit (a converted package and whatever the conversion kept there). */
export async function deleteCachedPackage(base) {
  const cache = await caches.open(PACKAGE_CACHE);
  const nested = !!hubPackageInfo(base);
  for (const req of await cache.keys()) {
    if (req.url.startsWith(base) && (nested || !req.url.slice(base.length).includes('/'))) await cache.delete(req);
  }
}

export async function storageSummary() {
  if (!navigator.storage?.estimate) return null;
  const { usage = 0, quota = 0 } = await navigator.storage.estimate();
  const persisted = (await navigator.storage.persisted?.()) ?? false;
  return { usage, quota, persisted };
}
