// The engine worker's protocol, defined once for both sides (engine.js posts requests and reads
// replies, worker.js the other way round): every request and event type, constructors that build
// them, and validators that reject an unknown or malformed message with a clear `BadMessage`
// error instead of letting it fail somewhere deeper.
//
// A request is {id, op, args}; the worker answers with any number of {id, type: 'event', event}
// and then one {id, type: 'result', value} or {id, type: 'error', error: {name, message}}.

/**
 * @typedef {{rgba: Uint8Array, count: number, width: number, height: number}} Frames
 *   RGBA frames, count × height × width × 4 bytes (as WebCodecs or a canvas gives them).
 *
 * Requests (`args` of each op):
 * @typedef {{modelUrl: string, samplerUrl?: string, maxBindingBytes?: number}} LoadArgs
 * @typedef {{repo: string, revision?: string, endpoint?: string, token?: string, maxShard?: number}} HubArgs  inspect, prepare
 * @typedef {{total: number, fast: boolean}} CandidatesArgs
 * @typedef {{manifestJson: string, frames: number, width: number, height: number}} EstimateArgs
 * @typedef {Frames & {k: number, fast: boolean}} SampleArgs
 * @typedef {Frames & {maxNew: number}} EncodeArgs
 * @typedef {{maxNew: number}} TextArgs
 * @typedef {{videoId: number, question: string, maxNew: number}} AskArgs
 * @typedef {{videoId: number}} VideoArgs  stop, release
 *
 * Results:
 * @typedef {{device: string, hasSampler: boolean, modelKind: string, hasSpatialEncoder: boolean}} LoadResult
 * @typedef {{videoId: number, tokens: number}} EncodeResult  encode, text
 * @typedef {{prompt_tokens: number, prefilled_tokens: number, prefill_ms: number, new_tokens: number, decode_ms: number}} AskStats
 * @typedef {{text: string, stats: AskStats}} AskResult
 * @typedef {{pool_bytes: number, pooled_bytes: number, owned_bytes: number, bind_groups: number, pipelines: number, wasm_bytes: number}} MemoryResult
 *   memory: the engine's own tally of what it holds (GPU buffers by kind, bind groups, pipelines) and the wasm memory
 *
 * Events:
 * @typedef {{kind: 'progress', which: string, i: number, n: number, done: number, total: number, cached: boolean}} ProgressEvent  load
 * @typedef {{kind: 'hub', phase: string, done: number, total: number, file?: string}} HubEvent  prepare (phase: download, convert or assemble)
 * @typedef {{kind: 'stage', stage: string, ms?: number}} StageEvent  encode, sample
 * @typedef {{kind: 'piece', piece: string}} PieceEvent  ask
 */

const FRAMES = { rgba: 'bytes', count: 'count', width: 'count', height: 'count' };

/** Each op's arguments: field -> type ('?' suffix: optional). */
export const REQUESTS = {
  load: { modelUrl: 'string', samplerUrl: 'string?', maxBindingBytes: 'number?' },
  inspect: { repo: 'string', revision: 'string?', endpoint: 'string?', token: 'string?', maxShard: 'number?' },
  prepare: { repo: 'string', revision: 'string?', endpoint: 'string?', token: 'string?', maxShard: 'number?' },
  'cancel-prepare': {},
  candidates: { total: 'count', fast: 'boolean' },
  estimate: { manifestJson: 'string', frames: 'count', width: 'count', height: 'count' },
  sample: { ...FRAMES, k: 'count', fast: 'boolean' },
  encode: { ...FRAMES, maxNew: 'count' },
  text: { maxNew: 'count' },
  ask: { videoId: 'count', question: 'string', maxNew: 'count' },
  stop: { videoId: 'count' },
  release: { videoId: 'count' },
  memory: {},
  // Test hooks: provoke the failures the app must survive.
  'test-lose-device': {},
  'test-crash': {},
};

/** Each event kind's fields. */
export const EVENTS = {
  progress: { which: 'string', i: 'number', n: 'number', done: 'number', total: 'number', cached: 'boolean' },
  hub: { phase: 'string', done: 'number', total: 'number', file: 'string?' },
  stage: { stage: 'string', ms: 'number?' },
  piece: { piece: 'string' },
};

/** Which events each op may send. */
const EVENTS_OF = { load: ['progress'], prepare: ['hub'], sample: ['stage'], encode: ['stage'], ask: ['piece'] };

/** An error that says a message broke the protocol. */
export class MessageError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BadMessage';
  }
}

const fail = (msg) => { throw new MessageError(msg); };
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function typeOk(type, v) {
  switch (type) {
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number' && !Number.isNaN(v);
    case 'count': return Number.isInteger(v) && v >= 0;
    case 'boolean': return typeof v === 'boolean';
    case 'bytes': return v instanceof Uint8Array;
    default: return false;
  }
}

/** Check `fields` of `what` against `spec` (unknown fields are refused unless `spec.open`). */
function checkFields(what, fields, spec) {
  if (!isObject(fields)) fail(`${what}: expected an object, got ${fields === null ? 'null' : typeof fields}`);
  for (const [name, t] of Object.entries(spec)) {
    if (name === 'open') continue;
    const optional = t.endsWith('?');
    const type = optional ? t.slice(0, -1) : t;
    const v = fields[name];
    if (v === undefined || (optional && v === null)) {
      if (!optional) fail(`${what}: ${name} is missing`);
      continue;
    }
    if (!typeOk(type, v)) fail(`${what}: ${name} must be ${type === 'count' ? 'a whole number ≥ 0' : type === 'bytes' ? 'a Uint8Array' : `a ${type}`}, got ${JSON.stringify(v) ?? typeof v}`);
  }
  if (!spec.open) {
    const extra = Object.keys(fields).filter((k) => !(k in spec) && fields[k] !== undefined);
    if (extra.length) fail(`${what}: unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')}`);
  }
}

/** A request, checked: throws `BadMessage` for an unknown op or malformed arguments. */
export function checkRequest(msg) {
  if (!isObject(msg)) fail(`an engine request must be an object, got ${msg === null ? 'null' : typeof msg}`);
  if (!Number.isInteger(msg.id)) fail(`an engine request needs a whole-number id, got ${JSON.stringify(msg.id)}`);
  const spec = Object.hasOwn(REQUESTS, msg.op) ? REQUESTS[msg.op] : null;
  if (!spec) fail(`unknown engine operation ${JSON.stringify(msg.op)} (known: ${Object.keys(REQUESTS).join(', ')})`);
  checkFields(`engine request ${msg.op}`, msg.args ?? {}, spec);
  return msg;
}

/** A request for `op`, checked before it is sent. */
export function request(id, op, args = {}) {
  return checkRequest({ id, op, args });
}

/** An event for `op`'s caller, checked. */
export function event(kind, fields = {}) {
  const e = { kind, ...fields };
  checkEvent(e);
  return e;
}

/** An event, checked: a known kind with its fields. */
export function checkEvent(e, op) {
  if (!isObject(e)) fail('an engine event must be an object');
  const spec = Object.hasOwn(EVENTS, e.kind) ? EVENTS[e.kind] : null;
  if (!spec) fail(`unknown engine event kind ${JSON.stringify(e.kind)}`);
  if (op && !(EVENTS_OF[op] ?? []).includes(e.kind)) fail(`engine operation ${op} sent a ${e.kind} event`);
  const { kind, ...fields } = e;
  checkFields(`engine event ${kind}`, fields, spec);
  return e;
}

export const reply = {
  event: (id, e) => ({ id, type: 'event', event: e }),
  result: (id, value) => ({ id, type: 'result', value }),
  error: (id, error) => ({ id, type: 'error', error }),
};

/** A reply from the worker, checked (`op`: the request's, to check its events). */
export function checkReply(msg, op) {
  if (!isObject(msg) || !(Number.isInteger(msg.id) || msg.id === null)) fail('an engine reply needs an id');
  switch (msg.type) {
    case 'event': return checkEvent(msg.event, op) && msg;
    case 'result': return msg;
    case 'error':
      if (!isObject(msg.error) || typeof msg.error.name !== 'string' || typeof msg.error.message !== 'string') fail('an engine error reply needs {name, message}');
      return msg;
    default: return fail(`unknown engine reply type ${JSON.stringify(msg.type)}`);
  }
}

/** Any rejection as the plain {name, message} an error reply carries. */
export function plainError(e) {
  if (e && typeof e === 'object') return { name: typeof e.name === 'string' && e.name ? e.name : 'EngineError', message: String(e.message ?? e) };
  return { name: 'EngineError', message: String(e) };
}
