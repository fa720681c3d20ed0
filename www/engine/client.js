// The page's side of the engine worker: promise-returning calls with streamed events, and crash
// detection. A crashed worker rejects every pending call with a `WorkerCrashed` error and calls
// `onCrash`, so the app can start a new one and reload from the cache.

export class EngineError extends Error {
  constructor({ name, message }) {
    super(message);
    this.name = name;
  }
}

export class EngineClient {
  constructor({ onCrash } = {}) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.pending = new Map();
    this.nextId = 1;
    this.dead = false;
    this.onCrash = onCrash;
    this.worker.onmessage = ({ data }) => this.#receive(data);
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      this.#die(`the engine's worker crashed (${e.message || 'no message'})`);
    };
    this.worker.onmessageerror = () => this.#die('the engine worker sent a message that could not be read');
  }

  /** Run `op` in the worker; `onEvent` receives its progress / stage / piece events. */
  call(op, args = {}, { onEvent, transfer = [] } = {}) {
    if (this.dead) return Promise.reject(new EngineError({ name: 'WorkerCrashed', message: 'the engine worker is not running' }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onEvent });
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  terminate() {
    this.dead = true;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new EngineError({ name: 'WorkerCrashed', message: 'the engine worker was stopped' }));
    this.pending.clear();
  }

  #receive({ id, type, value, error, event }) {
    const p = this.pending.get(id);
    if (!p) return;
    if (type === 'event') return p.onEvent?.(event);
    this.pending.delete(id);
    if (type === 'result') p.resolve(value);
    else p.reject(new EngineError(error));
  }

  #die(message) {
    if (this.dead) return;
    this.dead = true;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new EngineError({ name: 'WorkerCrashed', message }));
    this.pending.clear();
    this.onCrash?.(message);
  }
}
