// The engine's Web Worker: the wasm engine (src/web_engine.rs) and its GPU device live here, so the
// page stays responsive while the model loads, samples frames, encodes a video and answers. Pages
// talk to it only through the facade (engine.js); the protocol is defined in messages.js, and
// every request is checked against it before it runs.
import init, * as wasm from '../pkg/spatial_mllm_web.js';
import { HubClient } from '../hub/hub.js';
import { inspect, prepare, withPackageLock, PACKAGE_CACHE } from '../hub/convert.js';
import { checkRequest, event as makeEvent, plainError, reply } from './messages.js';
import { deviceLine, adapterInfo } from './device-line.js';

const { Engine, candidate_indices, estimate_memory } = wasm;

let engine = null;
const videos = new Map(); // id -> wasm Video
let nextVideo = 1;
let preparing = null; // the AbortController of the running `prepare`

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

function needEngine() {
  if (!engine) throw Object.assign(new Error('no model is loaded: load one first'), { name: 'BadInput' });
  return engine;
}

function needVideo(id) {
  const v = videos.get(id);
  if (!v) throw Object.assign(new Error('this video is no longer encoded here: encode it again'), { name: 'BadInput' });
  return v;
}

/** `load` from the network holds the package's Web Lock, so a second tab loading the same package
 * waits for the first one's download and then reads it from the cache. A package whose manifest
 * is cached is complete (the loader caches the manifest last) and loads without waiting. */
async function locked(url, work) {
  const base = url.endsWith('/') ? url : `${url}/`;
  const complete = await caches.open(PACKAGE_CACHE).then((c) => c.match(`${base}manifest.json`)).catch(() => null);
  return complete ? work() : withPackageLock(base, work);
}

/** The device facts that name a kernel choice and where it came from ('measured', 'remembered', ...). */
const KERNEL_FACTS = ['gemmTiling', 'gemmTilingSource', 'attentionKernel', 'attentionKernelSource', 'decodeKernels', 'decodeKernelsSource'];

/** Each op of messages.js's REQUESTS: (args, emit) -> result, or {value, transfer}. */
const ops = {
  async load({ modelUrl, samplerUrl, maxBindingBytes }, emit) {
    for (const v of videos.values()) v.free();
    videos.clear();
    engine?.free();
    engine = null;
    const progress = (which) => (i, n, done, total, cached) => emit('progress', { which, i, n, done, total, cached });
    const e = await locked(modelUrl, () => Engine.load(modelUrl, progress('model'), maxBindingBytes ?? null));
    if (samplerUrl) await locked(samplerUrl, () => e.load_sampler(samplerUrl, progress('sampler')));
    engine = e;
    // report: the model load's LoadReport (cache hits, damaged entries replaced, a cache warning);
    // kernels: the kernel choices for this device and model, each measured here or remembered.
    const facts = e.device_facts();
    const kernels = Object.fromEntries(KERNEL_FACTS.map((k) => [k, facts[k]]));
    return { device: deviceLine(facts, await adapterInfo()), kernels, hasSampler: e.has_sampler(), modelKind: e.model_kind(), hasSpatialEncoder: e.has_spatial_encoder(), report: JSON.parse(e.load_report()) };
  },

  // A hub repository: what it holds (no weights downloaded), then the package prepared in the
  // cache (downloaded, or converted while it streams); `load` then reads it from the cache.
  async inspect({ repo, revision, endpoint, token, maxShard }) {
    const info = await inspect(new HubClient({ endpoint, token }), wasm, repo, revision, { maxShard });
    info.plan?.free();
    const { plan, files, names, ...plain } = info;
    return plain;
  },

  async prepare({ repo, revision, endpoint, token, maxShard }, emit) {
    const client = new HubClient({ endpoint, token });
    preparing?.abort();
    const abort = (preparing = new AbortController());
    try {
      const out = await prepare(client, wasm, repo, revision, { maxShard, signal: abort.signal, onProgress: (p) => emit('hub', p) });
      return { ...out, retries: client.retries };
    } finally {
      if (preparing === abort) preparing = null;
    }
  },

  /** Stop a `prepare` (it rejects with an AbortError); what is done stays cached for a resume. */
  'cancel-prepare'() {
    preparing?.abort(new DOMException('the download was stopped; loading the model again resumes it', 'AbortError'));
    return true;
  },

  candidates({ total, fast }) {
    return Array.from(candidate_indices(total, fast));
  },

  estimate({ manifestJson, frames, width, height }) {
    return estimate_memory(manifestJson, frames, width, height);
  },

  async sample({ rgba, count, width, height, k, fast }, emit) {
    const r = await needEngine().sample(rgba, count, width, height, k, fast, (stage) => emit('stage', { stage }));
    return { value: r, transfer: [r.points.buffer, r.colors.buffer, r.point_frame.buffer, r.cameras.buffer] };
  },

  async encode({ rgba, count, width, height, maxNew }, emit) {
    const video = await needEngine().encode_video(rgba, count, width, height, true, maxNew, (stage, ms) => emit('stage', { stage, ms }));
    const id = nextVideo++;
    videos.set(id, video);
    return { videoId: id, tokens: video.tokens() };
  },

  // A session without a video: text-only questions (asked and stopped like a video's).
  async text({ maxNew }) {
    const session = await needEngine().text_session(maxNew);
    const id = nextVideo++;
    videos.set(id, session);
    return { videoId: id, tokens: 0 };
  },

  async ask({ videoId, question, maxNew }, emit) {
    const v = needVideo(videoId);
    const text = await v.ask(question, maxNew, (piece) => emit('piece', { piece }));
    return { text, stats: v.stats() };
  },

  stop({ videoId }) {
    videos.get(videoId)?.stop();
    return true;
  },

  release({ videoId }) {
    videos.get(videoId)?.free();
    videos.delete(videoId);
    return true;
  },

  /** The engine's tally of what it holds (a long session's memory record). */
  memory() {
    return needEngine().memory();
  },

  'test-lose-device'() {
    needEngine().lose_device();
    return true;
  },
  'test-crash'() {
    setTimeout(() => { throw new Error('worker crash provoked by a test'); });
    return true;
  },
};

const ready = init();

self.onmessage = async ({ data }) => {
  const id = Number.isInteger(data?.id) ? data.id : null;
  try {
    const { op, args = {} } = checkRequest(data);
    await ready;
    const emit = (kind, fields) => post(reply.event(id, makeEvent(kind, fields)));
    const out = await ops[op](args, emit);
    if (out && out.transfer) post(reply.result(id, out.value), out.transfer);
    else post(reply.result(id, out));
  } catch (e) {
    post(reply.error(id, plainError(e)));
  }
};
