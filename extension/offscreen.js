// The extension's offscreen document (chrome.offscreen, reason WORKERS): it hosts the app's engine
// facade (app/engine/engine.js: the wasm engine in a Web Worker, on WebGPU) for the side panel, so
// that the engine outlives a closed panel. Panels talk to it through RemoteEngine
// (remote-engine.js) over a BroadcastChannel, each with a runtime port that says it is alive.
//   - A panel that closes (its port disconnects) has its running work stopped at once: an answer
//     is stopped, an encoding or download given up.
//   - The loaded model and the last encoded video (keyed by the panel: page address, video
//     source, duration, chosen times and frame size; here also the model) are kept, so a reopened
//     panel asking about the same video skips loading and encoding.
//   - With no panel connected and nothing running for IDLE_MS (10 minutes; ?idle=ms in tests), the
//     document disposes of the engine and closes, giving the GPU memory back.
import { createEngine } from './app/engine/engine.js';
import { CHANNEL, errorToWire } from './remote-engine.js';

const IDLE_MS = Number(new URLSearchParams(location.search).get('idle')) || 10 * 60_000;
const bc = new BroadcastChannel(CHANNEL);
let engine = null;
let model = null; // {key, info}
let kept = null; // {key, video}: the last encoding a panel asked to keep
const clients = new Map(); // client id -> {connected, running: Map(call id -> {op, abort})}
let idleTimer = null;

function live() {
  if (!engine || engine.dead) {
    engine = createEngine({
      onCrash: (message) => {
        model = null;
        kept = null;
        bc.postMessage({ to: '*', type: 'crash', message });
      },
    });
  }
  return engine;
}

function client(id) {
  if (!clients.has(id)) clients.set(id, { connected: false, running: new Map() });
  return clients.get(id);
}

/** Starts the idle countdown when no panel is connected and nothing runs; any call stops it. */
function touch() {
  clearTimeout(idleTimer);
  idleTimer = null;
  const busy = [...clients.values()].some((c) => c.connected || c.running.size);
  if (busy) return;
  idleTimer = setTimeout(() => {
    engine?.dispose();
    engine = null;
    model = null;
    kept = null;
    bc.postMessage({ to: '*', type: 'crash', message: 'the engine was idle and freed its GPU memory' });
    (chrome.offscreen?.closeDocument?.() ?? Promise.reject()).catch(() => window.close());
  }, IDLE_MS);
}

const OPS = {
  async load({ modelUrl, sampler, maxBindingBytes }, { onEvent, signal }) {
    const key = JSON.stringify([modelUrl, sampler ?? null, maxBindingBytes ?? null]);
    if (model?.key === key && engine && !engine.dead) return { ...model.info, reused: true };
    model = null;
    kept = null; // encodings belong to the model they were made with
    const info = await live().load(modelUrl, { sampler, maxBindingBytes, onProgress: onEvent, signal });
    model = { key, info };
    return info;
  },
  inspect: (a, { signal }) => live().inspect(a.repo, { ...a, signal }),
  prepare: (a, { onEvent, signal }) => live().prepare(a.repo, { ...a, onProgress: onEvent, signal }),
  cancelPrepare: () => live().cancelPrepare(),
  estimate: (a) => live().estimate(a.manifestJson, a),
  candidates: (a) => live().candidates(a.total, a),
  sample: (a, { onEvent, signal }) => live().sample(a.frames, { k: a.k, fast: a.fast, onProgress: onEvent, signal }),
  async encode({ frames, maxNew, key }, { onEvent, signal }) {
    const full = key && model ? JSON.stringify([key, model.key, maxNew]) : null;
    if (full && kept?.key === full) return { ...kept.video, reused: true };
    const video = await live().encode(frames, { maxNew, onProgress: onEvent, signal });
    if (full) {
      if (kept) await engine.release(kept.video).catch(() => {});
      kept = { key: full, video };
    }
    return video;
  },
  async ask({ videoId, question, maxNew }, { onEvent, signal }) {
    const answer = live().ask(question, { video: { id: videoId }, maxNew, signal });
    try {
      for await (const piece of answer) onEvent({ piece });
    } catch (e) {
      if (e.name !== 'AbortError') throw e;
    }
    return answer.result;
  },
  stop: ({ videoId }) => live().stop({ id: videoId }),
  // The kept encoding stays (until another replaces it, the model changes or the engine idles out).
  release: ({ videoId }) => (kept?.video.id === videoId ? null : live().release({ id: videoId })),
  status: (_, { self }) => ({
    running: [...clients].flatMap(([id, c]) => [...c.running].filter(([callId]) => !(id === self.client && callId === self.id)).map(([, r]) => ({ client: id, op: r.op }))),
    model: model?.key ?? null,
    kept: kept?.key ?? null,
    clients: [...clients.values()].filter((c) => c.connected).length,
    idleMs: IDLE_MS,
  }),
};

async function run({ client: from, id, op, args }) {
  const reply = (m) => bc.postMessage({ to: from, id, ...m });
  if (!OPS[op]) { reply({ type: 'error', error: { name: 'BadMessage', message: `unknown engine operation ${op}` } }); return; }
  const c = client(from);
  const stop = new AbortController();
  c.running.set(id, { op, abort: () => stop.abort() });
  touch();
  try {
    reply({ type: 'result', value: await OPS[op](args ?? {}, { signal: stop.signal, onEvent: (event) => reply({ type: 'event', event }), self: { client: from, id } }) });
  } catch (e) {
    reply({ type: 'error', error: errorToWire(e) });
  } finally {
    c.running.delete(id);
    if (!c.connected && !c.running.size) clients.delete(from);
    touch();
  }
}

bc.onmessage = ({ data }) => {
  if (data?.to !== 'host') return;
  if (data.type === 'ping') bc.postMessage({ to: data.client, type: 'pong' });
  else if (data.type === 'abort') client(data.client).running.get(data.id)?.abort();
  else if (data.type === 'call') run(data);
};

// A panel's port: its disconnect (the panel closed or navigated) stops everything it started.
chrome.runtime.onConnect.addListener((port) => {
  if (!port.name.startsWith('engine:')) return;
  const id = port.name.slice('engine:'.length);
  client(id).connected = true;
  touch();
  port.onDisconnect.addListener(() => {
    const c = client(id);
    for (const r of c.running.values()) r.abort();
    c.connected = false;
    if (!c.running.size) clients.delete(id);
    touch();
  });
});
touch();
