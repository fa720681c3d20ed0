// The calls awaiting an answer, by id: one table for the engine facade (engine.js: answers from
// its worker) and the extension's remote engine (answers from the offscreen document). An answer
// is an event (to the call's onEvent) or a result or error, which settles the call; when the other
// side is gone every call still waiting fails.

export class PendingCalls {
  #calls = new Map();
  #next = 1;

  nextId() {
    return this.#next++;
  }

  /** `entry`: {resolve, reject, onEvent?, cleanup?, ...}: the call's own fields stay with it. */
  add(id, entry) {
    this.#calls.set(id, entry);
  }

  get(id) {
    return this.#calls.get(id);
  }

  /** Settle call `id` with `settle(entry)` after its cleanup; nothing if it is not waiting. */
  end(id, settle) {
    const entry = this.#calls.get(id);
    if (!entry) return;
    this.#calls.delete(id);
    entry.cleanup?.();
    settle(entry);
  }

  /** An answer {id, type: 'event' | 'result' | 'error', event | value | error} for its call;
   * `errorOf(error)` turns an error as it came into the rejection. */
  answer(msg, errorOf) {
    const entry = this.#calls.get(msg.id);
    if (!entry) return;
    if (msg.type === 'event') {
      entry.onEvent?.(msg.event);
      return;
    }
    this.end(msg.id, (e) => (msg.type === 'result' ? e.resolve(msg.value) : e.reject(errorOf(msg.error))));
  }

  /** Fail every waiting call with `error` (the worker or the document is gone). */
  failAll(error) {
    const waiting = [...this.#calls.values()];
    this.#calls.clear();
    for (const entry of waiting) {
      entry.cleanup?.();
      entry.reject(error);
    }
  }
}
