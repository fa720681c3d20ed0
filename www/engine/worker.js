// The engine's Web Worker: the wasm engine (src/web_engine.rs) and its GPU device live here, so the
// page stays responsive while the model loads, samples frames, encodes a video and answers.
// Protocol (see client.js): {id, op, ...args} in; {id, type: 'event' | 'result' | 'error', ...} out.
import init, * as wasm from '../pkg/spatial_mllm_web.js';
import { HubClient } from '../hub/hub.js';
import { inspect, prepare } from '../hub/convert.js';

const { Engine, candidate_indices, estimate_memory } = wasm;

let engine = null;
const videos = new Map(); // id -> wasm Video
let nextVideo = 1;
let preparing = null; // the AbortController of the running `prepare`

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

/** An engine rejection as a plain object; the engine's Error names say what kind of failure it is. */
function plainError(e) {
  if (e && typeof e === 'object') return { name: e.name || 'EngineError', message: String(e.message ?? e) };
  return { name: 'EngineError', message: String(e) };
}

function needEngine() {
  if (!engine) throw Object.assign(new Error('no model is loaded: load one first'), { name: 'BadInput' });
  return engine;
}

function needVideo(id) {
  const v = videos.get(id);
  if (!v) throw Object.assign(new Error('this video is no longer encoded here: encode it again'), { name: 'BadInput' });
  return v;
}

const ops = {
  async load({ modelUrl, samplerUrl, maxBindingBytes }, event) {
    for (const v of videos.values()) v.free();
    videos.clear();
    engine?.free();
    engine = null;
    const progress = (which) => (i, n, done, total, cached) => event({ kind: 'progress', which, i, n, done, total, cached });
    const e = await Engine.load(modelUrl, progress('model'), maxBindingBytes ?? null);
    if (samplerUrl) await e.load_sampler(samplerUrl, progress('sampler'));
    engine = e;
    return { device: e.device(), hasSampler: e.has_sampler(), modelKind: e.model_kind(), hasSpatialEncoder: e.has_spatial_encoder() };
  },

  // A hub repository: what it holds (no weights downloaded), then the package prepared in the
  // cache (downloaded, or converted while it streams); `load` then reads it from the cache.
  async inspect({ repo, revision, endpoint, token, maxShard }) {
    const info = await inspect(new HubClient({ endpoint, token }), wasm, repo, revision, { maxShard });
    info.plan?.free();
    const { plan, files, names, ...plain } = info;
    return plain;
  },

  async prepare({ repo, revision, endpoint, token, maxShard }, event) {
    const client = new HubClient({ endpoint, token });
    preparing?.abort();
    const abort = (preparing = new AbortController());
    try {
      const out = await prepare(client, wasm, repo, revision, { maxShard, signal: abort.signal, onProgress: (p) => event({ kind: 'hub', ...p }) });
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

  async sample({ rgba, count, width, height, k, fast }, event) {
    const r = await needEngine().sample(rgba, count, width, height, k, fast, (stage) => event({ kind: 'stage', stage }));
    return { value: r, transfer: [r.points.buffer, r.colors.buffer, r.point_frame.buffer, r.cameras.buffer] };
  },

  async encode({ rgba, count, width, height, maxNew }, event) {
    const video = await needEngine().encode_video(rgba, count, width, height, true, maxNew,
      (stage, ms) => event({ kind: 'stage', stage, ms }));
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

  async ask({ videoId, question, maxNew }, event) {
    const v = needVideo(videoId);
    const text = await v.ask(question, maxNew, (piece) => event({ kind: 'piece', piece }));
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

  // Test hooks: provoke the failures the page must survive.
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
  const { id, op, ...args } = data;
  const event = (e) => post({ id, type: 'event', event: e });
  try {
    await ready;
    if (!ops[op]) throw new Error(`unknown engine operation ${op}`);
    const out = await ops[op](args, event);
    if (out && out.transfer) post({ id, type: 'result', value: out.value }, out.transfer);
    else post({ id, type: 'result', value: out });
  } catch (e) {
    post({ id, type: 'error', error: plainError(e) });
  }
};
