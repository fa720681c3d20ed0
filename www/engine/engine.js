// The engine facade: the one interface the app (and any later front end) uses to run the model.
// `createEngine()` gives a WorkerEngine: the wasm engine and its GPU device live in a module Web
// Worker (worker.js), spoken to with the messages of messages.js; the page only sees this
// interface:
//
//   const engine = createEngine({ onCrash });
//   await engine.load(modelUrl, { sampler, onProgress, signal });       // -> {device, kernels, hasSampler, modelKind, hasSpatialEncoder, report}
//   const video = await engine.encode(frames, { maxNew, onProgress });   // frames: {rgba, count, width, height}; null: text-only
//   const answer = engine.ask('How far is the sofa?', { video, maxNew, signal });
//   for await (const piece of answer) show(piece);                      // an aborted signal ends it with an AbortError
//   const { text, stats, stopped } = await answer.result;
//
// Failures are `EngineError`s (or DOMException AbortErrors) whose `name` says what kind:
// GpuDeviceLost, GpuOutOfMemory, Busy, BadInput, PackageError, EngineError (src/web_engine.rs),
// WorkerCrashed (the worker died: make a new engine, the model must be loaded again), BadMessage
// (a request or reply broke the protocol), AbortError, and the hub's (RepoNotFound, …).
import { PendingCalls } from './calls.js';
import { MessageError, checkReply, request } from './messages.js';

export { MessageError };

/** The names an engine failure can carry (the hub's are in hub/hub.js). */
export const ErrorNames = Object.freeze({
  deviceLost: 'GpuDeviceLost',
  outOfMemory: 'GpuOutOfMemory',
  busy: 'Busy',
  badInput: 'BadInput',
  package: 'PackageError',
  engine: 'EngineError',
  crashed: 'WorkerCrashed',
  badMessage: 'BadMessage',
  abort: 'AbortError',
});

export class EngineError extends Error {
  constructor({ name, message }) {
    super(message);
    this.name = name;
  }
}

const abortError = (message = 'the operation was stopped') => new DOMException(message, 'AbortError');

/**
 * An encoded video (or a text-only session) in the engine: questions about it run only the
 * language model. `tokens`: its visual tokens (0 for text-only).
 * @typedef {{id: number, tokens: number, textOnly: boolean}} EncodedVideo
 */

/**
 * The streamed reply to a question: an async iterable of text pieces, and `result`, which
 * resolves to {text, stats, stopped} once the reply is complete (or stopped by the signal).
 * Iterating an aborted answer yields the pieces that came, then throws an AbortError whose
 * `result` is the partial reply.
 */
export class Answer {
  #pieces = [];
  #wake = null;
  #end = null; // {result} or {error}
  #settle = null; // the result's {resolve, reject}

  constructor() {
    this.result = new Promise((resolve, reject) => { this.#settle = { resolve, reject }; });
    this.result.catch(() => {}); // a caller that only iterates sees the failure there
  }

  /** (engine side) A piece arrived. */
  _piece(p) {
    this.#pieces.push(p);
    this.#wake?.();
  }

  /** (engine side) The reply is complete: `stopped` when the signal ended it. */
  _finish(result) {
    this.#end = { result };
    this.#settle.resolve(result);
    this.#wake?.();
  }

  _fail(error) {
    this.#end = { error };
    this.#settle.reject(error);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.#pieces.length) {
        yield this.#pieces.shift();
        continue;
      }
      if (this.#end) {
        if (this.#end.error) throw this.#end.error;
        if (this.#end.result.stopped) throw Object.assign(abortError('the answer was stopped'), { result: this.#end.result });
        return;
      }
      await new Promise((r) => { this.#wake = r; });
      this.#wake = null;
    }
  }
}

/** The engine in a module Web Worker. `onCrash(message)`: the worker died (every pending call
 * rejects with WorkerCrashed; make a new engine). */
export class WorkerEngine {
  #worker;
  #calls = new PendingCalls();

  constructor({ onCrash } = {}) {
    this.dead = false;
    this.onCrash = onCrash;
    /** What the last `load` resolved to (device, model kind, ...), or null. */
    this.info = null;
    this.#worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.#worker.onmessage = ({ data }) => this.#receive(data);
    this.#worker.onerror = (e) => {
      e.preventDefault?.();
      this.#die(`the engine's worker crashed (${e.message || 'no message'})`);
    };
    this.#worker.onmessageerror = () => this.#die('the engine worker sent a message that could not be read');
  }

  // ---- models ----

  /** Load a model package by URL (Cache Storage first, then the network), and with `sampler` a
   * VGGT package for `sample`. `onProgress({which, i, n, done, total, cached})` per shard;
   * `maxBindingBytes` plans for a smaller GPU. Resolves to {device (a sentence for a person), kernels ({gemmTiling,
   * attentionKernel, decodeKernels} and each one's ...Source: measured now or remembered), hasSampler, modelKind, hasSpatialEncoder,
   * report (the load's LoadReport: cache hits, damaged entries fetched again, a cache warning)}. */
  async load(modelUrl, { sampler, maxBindingBytes, onProgress, signal } = {}) {
    this.info = null;
    this.info = await this.#call('load', { modelUrl, samplerUrl: sampler ?? undefined, maxBindingBytes: maxBindingBytes ?? undefined }, { onEvent: onProgress, signal });
    return this.info;
  }

  /** What a hub repository holds, with nothing downloaded: {route, kind, commit, base, manifestJson, downloadBytes, packageBytes, cached, ...}. */
  inspect(repo, { revision, endpoint, token, maxShard, signal } = {}) {
    return this.#call('inspect', { repo, revision, endpoint, token, maxShard }, { signal });
  }

  /** Download (and convert in the browser) a hub repository into Cache Storage; resolves to
   * {base, kind, commit, bytes, route, retries, waited (another tab prepared it: this one waited on its
   * Web Lock)}; `load(base)` then reads it. `onProgress({phase, done, total, file})`.
   * The signal (or `cancelPrepare()`) stops it with an AbortError; what is done stays cached. */
  prepare(repo, { revision, endpoint, token, maxShard, onProgress, signal } = {}) {
    const stop = () => this.cancelPrepare().catch(() => {});
    return this.#call('prepare', { repo, revision, endpoint, token, maxShard }, { onEvent: onProgress, signal, onAbort: stop, waitOnAbort: true });
  }

  /** Stop a running `prepare`. */
  cancelPrepare() {
    return this.#call('cancel-prepare');
  }

  /** The memory a package needs for `frames` frames of width x height: {weight_bytes, activation_bytes, largest_buffer_bytes, largest}. */
  estimate(manifestJson, { frames, width, height }) {
    return this.#call('estimate', { manifestJson, frames, width, height });
  }

  // ---- frames ----

  /** Which frames of a video of `total` to decode as the sampler's candidates (ascending). */
  candidates(total, { fast }) {
    return this.#call('candidates', { total, fast });
  }

  /** Space-aware sampling over candidate frames: picks `k`; resolves to {selected, points, colors,
   * point_frame, cameras, vggt_ms, total_ms}. `onProgress({stage})`. */
  sample(frames, { k, fast, onProgress, signal }) {
    const { rgba, count, width, height } = frames;
    return this.#call('sample', { rgba, count, width, height, k, fast }, { onEvent: onProgress, signal });
  }

  // ---- videos and questions ----

  /** Encode frames once (null: a text-only session with no visual block); `maxNew` sizes the
   * context for the longest answer. `onProgress({stage, ms})` hears ViT, VGGT, connector, done.
   * Resolves to an EncodedVideo. An aborted signal rejects with AbortError (the encoding is dropped). */
  async encode(frames, { maxNew, onProgress, signal } = {}) {
    const onLate = ({ videoId }) => this.release({ id: videoId }).catch(() => {});
    if (frames == null) {
      const r = await this.#call('text', { maxNew }, { signal, onLate });
      return { id: r.videoId, tokens: 0, textOnly: true };
    }
    const { rgba, count, width, height } = frames;
    const r = await this.#call('encode', { rgba, count, width, height, maxNew }, { onEvent: onProgress, signal, onLate });
    return { id: r.videoId, tokens: r.tokens, textOnly: false };
  }

  /** Ask about `video` (an EncodedVideo); returns an Answer (async iterable of pieces, `result`).
   * Aborting `signal` stops the reply: what came so far is kept. */
  ask(question, { video, maxNew, signal } = {}) {
    const answer = new Answer();
    if (!video) {
      answer._fail(new EngineError({ name: 'BadInput', message: 'encode a video (or open a text-only session) before asking' }));
      return answer;
    }
    if (signal?.aborted) {
      answer._fail(abortError('the answer was stopped before it started'));
      return answer;
    }
    const stop = () => this.#call('stop', { videoId: video.id }).catch(() => {});
    signal?.addEventListener('abort', stop, { once: true });
    this.#call('ask', { videoId: video.id, question, maxNew }, { onEvent: (e) => answer._piece(e.piece) })
      .then((r) => answer._finish({ ...r, stopped: !!signal?.aborted }), (e) => answer._fail(e))
      .finally(() => signal?.removeEventListener('abort', stop));
    return answer;
  }

  /** Stop the answer being generated about `video` (its Answer completes with what it has). */
  stop(video) {
    return this.#call('stop', { videoId: video.id });
  }

  /** Free an encoded video. */
  release(video) {
    return this.#call('release', { videoId: video.id });
  }

  /** What the engine holds, by its own count: {pool_bytes, pooled_bytes, owned_bytes, bind_groups,
   * pipelines, wasm_bytes} (GPU buffers of the pool, of them kept for reuse, outside the pool; see
   * messages.js). For long-session checks; rejects with BadInput before a model is loaded. */
  memory() {
    return this.#call('memory');
  }

  // ---- lifetime ----

  /** Stop the worker: pending calls reject with WorkerCrashed, later ones too. */
  dispose() {
    if (this.dead) return;
    this.dead = true;
    this.#worker.terminate();
    this.#rejectAll('the engine worker was stopped');
  }

  /** Test hooks: destroy the GPU device (later calls reject with GpuDeviceLost), crash the worker. */
  loseDevice() {
    return this.#call('test-lose-device');
  }

  crash() {
    return this.#call('test-crash');
  }

  /** A request sent without the page-side check (tests: the worker's own check must refuse it). */
  _unchecked(op, args) {
    return this.#call(op, args, { unchecked: true });
  }

  // ---- the protocol ----

  #call(op, args = {}, { onEvent, signal, onAbort, waitOnAbort = false, onLate, unchecked = false } = {}) {
    if (this.dead) return Promise.reject(new EngineError({ name: 'WorkerCrashed', message: 'the engine worker is not running' }));
    if (signal?.aborted) return Promise.reject(signal.reason instanceof DOMException ? signal.reason : abortError());
    const id = this.#calls.nextId();
    let msg;
    try {
      msg = unchecked ? { id, op, args } : request(id, op, args);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const entry = { op, resolve, reject, onEvent };
      if (signal) {
        // Either the worker is told to stop and its answer awaited (prepare), or the call is
        // given up at once and a late result handed to `onLate` (encode: free what was made).
        const aborted = () => {
          onAbort?.();
          if (waitOnAbort) return;
          entry.resolve = (value) => onLate?.(value);
          entry.reject = () => {};
          reject(signal.reason instanceof DOMException ? signal.reason : abortError());
        };
        signal.addEventListener('abort', aborted, { once: true });
        entry.cleanup = () => signal.removeEventListener('abort', aborted);
      }
      this.#calls.add(id, entry);
      this.#worker.postMessage(msg);
    });
  }

  #receive(data) {
    const p = this.#calls.get(data?.id);
    if (!p) return;
    let msg;
    try {
      msg = checkReply(data, p.op);
    } catch (e) {
      this.#calls.end(data.id, (c) => c.reject(e));
      return;
    }
    this.#calls.answer(msg, (e) => (e.name === 'AbortError' ? abortError(e.message) : new EngineError(e)));
  }

  #rejectAll(message) {
    this.#calls.failAll(new EngineError({ name: 'WorkerCrashed', message }));
  }

  #die(message) {
    if (this.dead) return;
    this.dead = true;
    this.#worker.terminate();
    this.#rejectAll(message);
    this.onCrash?.(message);
  }
}

/** The engine, in a Web Worker. */
export function createEngine(options) {
  return new WorkerEngine(options);
}
