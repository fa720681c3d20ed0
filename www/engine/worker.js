// The engine's Web Worker: the wasm engine (src/web_engine.rs) and its GPU device live here, so the
// page stays responsive while the model loads, samples frames, encodes a video and answers.
// Protocol (see client.js): {id, op, ...args} in; {id, type: 'event' | 'result' | 'error', ...} out.
import init, { Engine, candidate_indices, estimate_memory } from '../pkg/spatial_mllm_web.js';

let engine = null;
const videos = new Map(); // id -> wasm Video
let nextVideo = 1;

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
    return { device: e.device(), hasSampler: e.has_sampler() };
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
