// The side panel's engine: the app's engine facade (app/engine/engine.js) run in the extension's
// offscreen document (offscreen.js), which outlives the panel, spoken to over a BroadcastChannel
// (structured clone, so frames travel as bytes; chrome.runtime messages are JSON). A runtime port
// to the offscreen document tells it the panel is alive: when the panel closes the port
// disconnects and the document stops that panel's work. RemoteEngine has the facade's interface,
// so the app's asking UI (app/ask-ui.js) and frame choice (app/pipeline.js) use it unchanged.
import { PendingCalls } from './app/engine/calls.js';
import { Answer, EngineError } from './app/engine/engine.js';

export const CHANNEL = 'spatial-mllm-engine';
export const OFFSCREEN = 'offscreen.html';

const abortError = (message = 'the operation was stopped') => new DOMException(message, 'AbortError');

/** A failure as it crosses the channel (name, message and the hub's `page`) and back. */
export const errorToWire = (e) => ({ name: e?.name ?? 'EngineError', message: e?.message ?? String(e), page: e?.page });
const errorFromWire = (w) => (w.name === 'AbortError' ? abortError(w.message) : Object.assign(new EngineError(w), w.page ? { page: w.page } : {}));

/** Creates the offscreen document unless it is there; `idleMs` (tests) sets how long it stays
 * after the last panel closes. */
async function ensureOffscreen(idleMs) {
  const url = chrome.runtime.getURL(OFFSCREEN);
  const have = await chrome.runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'], documentUrls: [url] }).catch(() => []);
  if (have.length) return;
  try {
    await chrome.offscreen.createDocument({
      url: idleMs ? `${OFFSCREEN}?idle=${idleMs}` : OFFSCREEN,
      reasons: ['WORKERS'],
      justification: 'Runs the model (a WebGPU engine in a Web Worker) so that a reopened side panel finds the loaded model and the video it encoded.',
    });
  } catch (e) {
    if (!/single offscreen document|already/i.test(e.message)) throw e; // another panel made it meanwhile
  }
}

export class RemoteEngine {
  #bc;
  #port = null;
  #ready;
  #calls = new PendingCalls();
  #pong = null; // resolves the host's answer to a ping

  constructor({ onCrash, idleMs } = {}) {
    this.id = crypto.randomUUID();
    this.dead = false;
    this.info = null;
    this.onCrash = onCrash;
    this.#bc = new BroadcastChannel(CHANNEL);
    this.#bc.onmessage = ({ data }) => this.#receive(data);
    this.#ready = this.#connect(idleMs);
    this.#ready.catch(() => {});
  }

  async #connect(idleMs) {
    await ensureOffscreen(idleMs);
    // The host answers a ping once its module has run (it may still be starting).
    for (let i = 0; ; i++) {
      const pong = new Promise((resolve) => { this.#pong = resolve; });
      this.#bc.postMessage({ to: 'host', client: this.id, type: 'ping' });
      if (await Promise.race([pong, new Promise((r) => setTimeout(() => r(false), 200))])) break;
      if (i > 50) throw new EngineError({ name: 'WorkerCrashed', message: 'the extension\'s engine document did not start (chrome.offscreen)' });
    }
    this.#pong = null;
    this.#port = chrome.runtime.connect({ name: `engine:${this.id}` });
    this.#port.onDisconnect.addListener(() => this.#die('the extension\'s engine document closed'));
  }

  #receive(data) {
    if (data?.to !== this.id && data?.to !== '*') return;
    if (data.type === 'pong') { this.#pong?.(true); return; }
    if (data.type === 'crash') { this.#die(data.message); return; }
    this.#calls.answer(data, errorFromWire);
  }

  async #call(op, args = {}, { onEvent, signal } = {}) {
    if (this.dead) throw new EngineError({ name: 'WorkerCrashed', message: 'the engine is not running' });
    if (signal?.aborted) throw abortError();
    await this.#ready;
    const id = this.#calls.nextId();
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, onEvent };
      if (signal) {
        // The host stops the work; its answer (an AbortError, or an ask's partial result) settles the call.
        const aborted = () => this.#bc.postMessage({ to: 'host', client: this.id, type: 'abort', id });
        signal.addEventListener('abort', aborted, { once: true });
        entry.cleanup = () => signal.removeEventListener('abort', aborted);
      }
      this.#calls.add(id, entry);
      this.#bc.postMessage({ to: 'host', client: this.id, type: 'call', id, op, args });
    });
  }

  async load(modelUrl, { sampler, maxBindingBytes, onProgress, signal } = {}) {
    this.info = null;
    this.info = await this.#call('load', { modelUrl, sampler, maxBindingBytes }, { onEvent: onProgress, signal });
    return this.info;
  }
  inspect(repo, { revision, endpoint, token, maxShard, signal } = {}) { return this.#call('inspect', { repo, revision, endpoint, token, maxShard }, { signal }); }
  prepare(repo, { revision, endpoint, token, maxShard, onProgress, signal } = {}) { return this.#call('prepare', { repo, revision, endpoint, token, maxShard }, { onEvent: onProgress, signal }); }
  cancelPrepare() { return this.#call('cancelPrepare'); }
  estimate(manifestJson, { frames, width, height }) { return this.#call('estimate', { manifestJson, frames, width, height }); }
  candidates(total, { fast }) { return this.#call('candidates', { total, fast }); }
  sample(frames, { k, fast, onProgress, signal }) { return this.#call('sample', { frames, k, fast }, { onEvent: onProgress, signal }); }
  /** As the facade's; with `key` (the page, video, chosen times) the host hands back the encoding
   * it kept for the same key (and model) instead of encoding again: `reused` says so. */
  encode(frames, { maxNew, key, onProgress, signal } = {}) { return this.#call('encode', { frames, maxNew, key }, { onEvent: onProgress, signal }); }
  stop(video) { return this.#call('stop', { videoId: video.id }); }
  release(video) { return this.#call('release', { videoId: video.id }); }
  /** What the host is doing: {running: [{client, op}], model, kept, clients, idleMs}. */
  status() { return this.#call('status'); }

  ask(question, { video, maxNew, signal } = {}) {
    const answer = new Answer();
    if (!video) {
      answer._fail(new EngineError({ name: 'BadInput', message: 'encode a video (or open a text-only session) before asking' }));
      return answer;
    }
    this.#call('ask', { videoId: video.id, question, maxNew }, { onEvent: (e) => answer._piece(e.piece), signal })
      .then((r) => answer._finish({ ...r, stopped: !!signal?.aborted }), (e) => answer._fail(e));
    return answer;
  }

  /** This panel is done: its port closes (the host stops its work); the model and the last
   * encoding stay in the host for a reopened panel until it has been idle a while. */
  dispose() {
    if (this.dead) return;
    this.dead = true;
    this.#port?.disconnect();
    this.#bc.close();
    this.#rejectAll('the engine link was closed');
  }

  #rejectAll(message) {
    this.#calls.failAll(new EngineError({ name: 'WorkerCrashed', message }));
  }

  #die(message) {
    if (this.dead) return;
    this.dead = true;
    this.#bc.close();
    this.#rejectAll(message);
    this.onCrash?.(message);
  }
}
