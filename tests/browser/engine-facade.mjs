// The engine facade (www/engine/engine.js: load, sample, encode, ask as an async iterable of
// pieces with an AbortSignal) and its worker implementation, tested directly in headless Chromium
// on the bundled demo model (www/models/demo: the Spatial-MLLM v1.1 fixture and its VGGT sampler)
// with the v1.1 fixture's frames: every step the app takes, an answer aborted mid-way (its
// iteration ends with an AbortError carrying the partial reply; the engine goes on answering), a
// concurrent question refused, malformed messages refused by the page's and the worker's checks
// (messages.js), and the errors' names (BadInput, Busy, BadMessage, GpuDeviceLost, WorkerCrashed).
// Needs www/ assembled (tools/assemble-app.sh).
import { browserTest, echoingPage } from './chromium.mjs';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
for (const need of ['www/pkg/spatial_mllm_web.js', 'www/models/demo/model/manifest.json', 'www/models/demo/sampler/manifest.json']) {
  if (!fs.existsSync(path.join(root, need))) {
    console.error(`FAILED: ${need} is missing: run tools/assemble-app.sh (or tools/build-app.sh) first`);
    process.exit(1);
  }
}

const fail = (msg) => { throw new Error(msg); };
await browserTest(root, async ({ browser, url }) => {
  const page = await echoingPage(browser);
  const q = new URLSearchParams({ model: `${url}/www/models/demo/model`, sampler: `${url}/www/models/demo/sampler`, fixture: `${url}/tests/fixtures/spatial-mllm-v1.1` });
  await page.goto(`${url}/tests/browser/engine-facade.html?${q}`);
  await page.waitForFunction(() => window.__done === true, null, { timeout: 600_000, polling: 500 });
  const { result: r, error } = await page.evaluate(() => ({ result: window.__result, error: window.__error }));
  if (error) fail(error);
  const named = (what, e, name, re) => {
    if (!e || e.name !== name || (re && !re.test(e.message))) fail(`${what}: expected an error named ${name}${re ? ` matching ${re}` : ''}, got ${JSON.stringify(e)}`);
  };
  const engineError = (what, e, name, re) => {
    named(what, e, name, re);
    if (!e.engineError) fail(`${what}: not an EngineError: ${JSON.stringify(e)}`);
  };

  // Before a model: typed refusals.
  engineError('encode before load', r.noModel, 'BadInput', /no model is loaded/);
  named('ask without a video', r.noVideo, 'BadInput', /encode a video/);

  // Load, frames, encode.
  const i = r.info;
  if (i.modelKind !== 'spatial-mllm-v1.1' || !i.hasSampler || !i.hasSpatialEncoder || typeof i.device !== 'string') fail(`load: ${JSON.stringify(i)}`);
  if (JSON.stringify(r.engineInfo) !== JSON.stringify(i)) fail('engine.info is not what load resolved to');
  if (r.progress < 2 || JSON.stringify(r.progressWhich) !== JSON.stringify(['model', 'sampler'])) fail(`load progress: ${r.progress} events of ${r.progressWhich}`);
  console.log(`loaded ${i.modelKind} on ${i.device} (${r.progress} progress events)`);
  if (r.candidates !== 32) fail(`candidates: ${r.candidates}`);
  if (r.sample.selected.length !== 2 || !(r.sample.points > 0) || JSON.stringify(r.sample.stages) !== JSON.stringify(['sampling: VGGT', 'sampling: selection'])) fail(`sample: ${JSON.stringify(r.sample)}`);
  const names = r.stages.map(([n]) => n);
  if (JSON.stringify(names) !== JSON.stringify(['ViT', 'VGGT', 'connector', 'done']) || !r.stages.every(([, ms]) => ms >= 0)) fail(`encode stages: ${JSON.stringify(r.stages)}`);
  if (!(r.video.tokens > 0) || r.video.textOnly || !Number.isInteger(r.video.id)) fail(`encoded video: ${JSON.stringify(r.video)}`);
  console.log(`encoded: ${r.video.tokens} visual tokens; stages ${JSON.stringify(r.stages)}`);

  // Asking: pieces add up to the result.
  const f = r.first, fr = r.firstResult;
  if (f.ended !== 'done' || !f.pieces.length || f.pieces.join('') !== fr.text || fr.stopped) fail(`first answer: ${JSON.stringify(f)} / ${JSON.stringify(fr)}`);
  if (!(fr.stats.prompt_tokens > r.video.tokens && fr.stats.new_tokens > 0)) fail(`first answer's stats: ${JSON.stringify(fr.stats)}`);
  console.log(`answer: ${JSON.stringify(fr.text)} in ${f.pieces.length} pieces`);

  // Aborted mid-answer.
  const a = r.aborted, ar = r.abortedResult;
  if (a.ended !== 'AbortError') fail(`an aborted answer's iteration ended with ${a.ended}`);
  if (!a.partial || a.partial.text !== ar.text || !ar.stopped) fail(`the AbortError does not carry the partial reply: ${JSON.stringify(a)} / ${JSON.stringify(ar)}`);
  if (a.pieces.join('') !== ar.text || !(ar.stats.new_tokens < 64)) fail(`aborted answer: ${a.pieces.length} pieces, ${JSON.stringify(ar)}`);
  console.log(`aborted after ${a.pieces.length} pieces: ${ar.stats.new_tokens} tokens of at most 64`);
  if (r.preAborted.ended !== 'AbortError' || r.preAborted.pieces.length) fail(`an answer aborted before it started: ${JSON.stringify(r.preAborted)}`);

  // The engine still answers, the same and from the cached prefix.
  if (r.againResult.text !== fr.text || r.again.pieces.join('') !== fr.text) fail(`asked again: ${JSON.stringify(r.againResult.text)} vs ${JSON.stringify(fr.text)}`);
  if (!(r.againResult.stats.prefilled_tokens < r.againResult.stats.prompt_tokens - r.video.tokens)) fail(`asked again without the cached prefix: ${JSON.stringify(r.againResult.stats)}`);

  // Busy.
  engineError('a concurrent question', r.busy, 'Busy', /still being answered/);
  if (r.busyIter.ended !== 'Busy') fail(`a refused answer's iteration ended with ${r.busyIter.ended}`);
  if (r.running !== fr.text) fail('the running answer was disturbed by the refused one');

  // Text-only.
  const t = r.text;
  if (!t.video.textOnly || t.video.tokens !== 0 || t.iter.ended !== 'done' || t.iter.pieces.join('') !== t.result.text || !(t.result.stats.new_tokens > 0)) fail(`text-only: ${JSON.stringify(t)}`);

  // Malformed messages.
  named('a request with a wrong type (page check)', r.badArgs, 'BadMessage', /manifestJson must be a string/);
  if (!r.badArgs.messageError) fail('the page check did not throw a MessageError');
  engineError('unchecked bad frames (worker check)', r.badFrames, 'BadMessage', /rgba must be a Uint8Array/);
  engineError('an unknown operation (worker check)', r.unknownOp, 'BadMessage', /unknown engine operation "frobnicate"/);
  engineError('an unknown field (worker check)', r.extraField, 'BadMessage', /unknown field force/);
  const v = r.validators;
  named('a missing field', v.missing, 'BadMessage', /question is missing/);
  named('a negative count', v.negative, 'BadMessage', /maxNew must be a whole number/);
  named('a request without an id', v.noId, 'BadMessage', /id/);
  named('an unknown event kind', v.eventKind, 'BadMessage', /unknown engine event kind "gossip"/);
  named('an event field of the wrong type', v.eventField, 'BadMessage', /piece must be a string/);
  named('an event the operation does not send', v.wrongEvent, 'BadMessage', /load sent a piece event/);
  named('an unknown reply type', v.replyType, 'BadMessage', /unknown engine reply type/);
  if (v.good !== null) fail(`a good request was refused: ${JSON.stringify(v.good)}`);
  if (r.afterBad !== fr.text) fail('the engine did not answer as before after the malformed messages');

  // Typed errors.
  engineError('zero frames', r.zeroFrames, 'BadInput');
  engineError('a released video', r.released, 'BadInput', /no longer encoded/);
  engineError('after lose_device', r.lost, 'GpuDeviceLost');
  if (r.crashes.length !== 1 || !/crash/.test(r.crashes[0])) fail(`onCrash: ${JSON.stringify(r.crashes)}`);
  engineError('a call after a crash', r.afterCrash, 'WorkerCrashed');
  engineError('a call after dispose', r.disposed, 'WorkerCrashed');
  console.log('engine facade: all checks passed');
});
