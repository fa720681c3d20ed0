// The web app's engine API (src/web_engine.rs) in headless Chromium on the tiny Spatial-MLLM v1.1
// fixture and the tiny VGGT fixture as the frame sampler (both converted to f32 packages by the
// native CLI): the reply to the fixture's question equals upstream's greedy reply, streamed pieces
// add up to it, a concurrent question is refused (Busy), stop() ends a reply early, the same
// question asked again gives the same reply with a shorter prefill; candidate indices, the memory
// estimate, load_sampler + sample (selection, points, colours, cameras), encode_video's stage
// callbacks, error names, and lose_device (every call then refused as GpuDeviceLost, promptly).
// Then a plain Qwen2.5-VL package (tests/fixtures/qwen2.5-vl, no spatial encoder): its kind, a
// text-only question and the fixture's video (ViT alone) answered with transformers' greedy replies.
import { browserTest, echoingPage } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = 'target/browser-fixtures/engine-v1.1';
const vggt = 'target/browser-fixtures/engine-vggt';
const qwen = 'target/browser-fixtures/engine-qwen';
for (const [fixture, out] of [['tests/fixtures/spatial-mllm-v1.1', pkg], ['tests/fixtures/vggt', vggt], ['tests/fixtures/qwen2.5-vl', qwen]]) {
  fs.rmSync(path.join(root, out), { recursive: true, force: true });
  execFileSync(path.join(root, 'target/release/spatial-mllm'), ['convert', fixture, out, '--policy', '=f32'], { cwd: root, stdio: 'inherit' });
}

const fail = (msg) => { throw new Error(msg); };
await browserTest(root, async ({ browser, url }) => {
  const page = await echoingPage(browser);
  await page.goto(`${url}/tests/browser/engine.html?package=${encodeURIComponent(`${url}/${pkg}`)}&fixture=${encodeURIComponent(`${url}/tests/fixtures/spatial-mllm-v1.1`)}&vggt=${encodeURIComponent(`${url}/${vggt}`)}&qwen=${encodeURIComponent(`${url}/${qwen}`)}&qwenFixture=${encodeURIComponent(`${url}/tests/fixtures/qwen2.5-vl`)}`);
  await page.waitForFunction(() => window.__done === true, null, { timeout: 600_000, polling: 500 });
  const { result: r, error } = await page.evaluate(() => ({ result: window.__result, error: window.__error }));
  if (error) fail(error);
  console.log(`device: ${r.device}`);
  console.log(`reply: ${JSON.stringify(r.first)} (${r.pieces.length} pieces); upstream: ${JSON.stringify(r.want)}`);
  if (r.first !== r.want) fail('the reply differs from upstream greedy reply');
  if (r.pieces.join('') !== r.first) fail('the streamed pieces do not add up to the reply');
  if (!r.refused || !/still being answered/.test(r.refused)) fail(`a concurrent question was not refused: ${r.refused}`);
  if (typeof r.stopped !== 'string') fail('a stopped reply did not resolve');
  if (r.again !== r.first) fail('the same question asked again gave another reply');
  if (r.progress < 1) fail('no load progress was reported');
  // The GEMM tiling and the attention kernel: measured by the first engine of this fresh profile
  // and kept in Cache Storage; the later engine (the Qwen2.5-VL package) takes them without measuring.
  const [t1, t2] = [r.facts, r.qwen.facts];
  if (t1.gemmTilingSource !== 'measured' || t2.gemmTilingSource !== 'remembered' || t1.gemmTiling !== t2.gemmTiling) fail(`GEMM tiling: first ${JSON.stringify(t1)}, then ${JSON.stringify(t2)}`);
  console.log(`GEMM tiling ${t1.gemmTiling}: measured by the first engine, remembered by the second`);
  if (t1.attentionKernelSource !== 'measured' || t2.attentionKernelSource !== 'remembered' || t1.attentionKernel !== t2.attentionKernel || !/^(tile|blocked-(16|32)k)$/.test(t1.attentionKernel)) fail(`attention kernel: first ${JSON.stringify(t1)}, then ${JSON.stringify(t2)}`);
  console.log(`attention kernel ${t1.attentionKernel}: measured by the first engine (${t1.attentionKernelDetail}), remembered by the second`);
  // The decode step's kernels: separate on a CPU adapter (not measured); on a GPU measured by
  // each model's first load (a kernel set per context band) and remembered.
  if (t1.cpu) {
    for (const t of [t1, t2]) if (t.decodeKernels !== 'separate' || t.decodeKernelsSource !== 'default') fail(`decode kernels on a CPU adapter: ${t.decodeKernels} (${t.decodeKernelsSource})`);
  } else {
    const plan = /^(folded|fused|separate)(\/(folded|fused|separate))?$/;
    for (const t of [t1, t2]) if (!plan.test(t.decodeKernels) || t.decodeKernelsSource !== 'measured') fail(`decode kernels on a GPU: ${t.decodeKernels} (${t.decodeKernelsSource})`);
  }
  console.log(`decode step: ${t1.decodeKernels} / ${t2.decodeKernels} kernels (${t1.decodeKernelsSource}; cpu: ${t1.cpu})`);

  // Error names.
  const named = (what, e, name, re) => {
    if (!e.isError || e.name !== name || (re && !re.test(e.message))) fail(`${what}: expected an Error named ${name}, got ${JSON.stringify(e)}`);
  };
  named('a concurrent question', r.busy, 'Busy', /still being answered/);
  named('zero frames', r.badInput, 'BadInput');
  named('candidates of an empty video', r.noFrames, 'BadInput');
  named('sample() before load_sampler', r.noSampler, 'BadInput', /load_sampler/);
  named('a Spatial-MLLM package as the sampler', r.wrongKind, 'PackageError', /vggt/);

  // Candidates and the memory estimate.
  const c = r.candidates;
  const ascending = (a) => a.every((v, i) => i === 0 || v > a[i - 1]);
  if (c.fast.length !== 32 || c.full.length !== 128 || c.few.length !== 10 || ![c.fast, c.full, c.few].every(ascending)) fail(`candidate indices: ${JSON.stringify(c)}`);
  if (c.full[0] !== 0 || c.full[127] !== 999) fail('candidate indices do not span the video');
  const e = r.estimate, e4 = r.estimateMore;
  if (!(e.weight_bytes > 0 && e.activation_bytes > 0 && e.largest_buffer_bytes > 0 && typeof e.largest === 'string')) fail(`memory estimate: ${JSON.stringify(e)}`);
  if (!(e4.activation_bytes > e.activation_bytes) || e4.weight_bytes !== e.weight_bytes) fail(`4x the frames: ${JSON.stringify(e4)} vs ${JSON.stringify(e)}`);
  console.log(`estimate for ${r.frames} frames: ${JSON.stringify(e)}`);

  // The frame sampler.
  if (r.hadSampler || !r.hasSampler) fail('has_sampler() is wrong');
  if (JSON.stringify(r.samplerStages) !== JSON.stringify(['sampling: VGGT', 'sampling: selection'])) fail(`sampler stages: ${r.samplerStages}`);
  for (const [what, p, k] of [['k = 2', r.picked, 2], ['k = 16', r.all, Math.min(16, r.frames)]]) {
    const sel = p.selected;
    if (sel.length !== k || !ascending(sel) || sel.some((i) => i < 0 || i >= r.frames)) fail(`sample ${what}: selected ${sel}`);
    const n = p.point_frame;
    if (n < 1 || n > 120000 || p.points !== 3 * n || p.colors !== 3 * n) fail(`sample ${what}: ${n} points, ${p.points} coordinates, ${p.colors} colours`);
    if (p.cameras !== 12 * r.frames) fail(`sample ${what}: ${p.cameras} camera values for ${r.frames} frames`);
    if (!p.finite || !p.frames_ok) fail(`sample ${what}: non-finite values or bad point frames`);
    if (JSON.stringify(p.types) !== JSON.stringify(['Uint32Array', 'Float32Array', 'Uint8Array', 'Uint16Array', 'Float32Array'])) fail(`sample ${what}: types ${p.types}`);
    if (!(p.vggt_ms >= 0 && p.total_ms >= p.vggt_ms)) fail(`sample ${what}: times ${p.vggt_ms} / ${p.total_ms}`);
    console.log(`sample ${what}: selected ${sel}, ${n} points, VGGT ${p.vggt_ms.toFixed(0)} ms of ${p.total_ms.toFixed(0)} ms`);
  }

  // Stages of encode_video, statistics of the answers.
  const names = r.stages.map(([n]) => n);
  if (JSON.stringify(names) !== JSON.stringify(['ViT', 'VGGT', 'connector', 'done']) || !r.stages.every(([, ms]) => typeof ms === 'number' && ms >= 0)) fail(`encode stages: ${JSON.stringify(r.stages)}`);
  console.log(`encode stages: ${JSON.stringify(r.stages)}`);
  const s1 = r.stats1, s2 = r.stats2;
  if (!(s1.prompt_tokens > r.tokens && s1.prefilled_tokens === s1.prompt_tokens && s1.new_tokens > 0 && s1.prefill_ms >= 0 && s1.decode_ms >= 0)) fail(`first answer's stats: ${JSON.stringify(s1)}`);
  if (!(s2.prompt_tokens === s1.prompt_tokens && s2.prefilled_tokens < s2.prompt_tokens - r.tokens)) fail(`the repeated question did not reuse the cached prefix: ${JSON.stringify(s2)}`);
  console.log(`stats: ${JSON.stringify(s1)} then ${JSON.stringify(s2)}; ${r.tokens} visual tokens`);
  if (r.oldReply !== r.first) fail('encode_video without on_stage gave another reply');

  // A plain Qwen2.5-VL package: no spatial encoder, transformers' greedy replies (32 tokens, none a stop token).
  const qw = r.qwen;
  if (qw.kind !== 'qwen2.5-vl' || qw.spatial !== false) fail(`qwen package: kind ${qw.kind}, spatial encoder ${qw.spatial}`);
  if (/VGGT/.test(qw.estimate.largest) || !(qw.estimate.activation_bytes > 0)) fail(`qwen memory estimate: ${JSON.stringify(qw.estimate)}`);
  console.log(`qwen text-only reply: ${JSON.stringify(qw.text)}; transformers: ${JSON.stringify(qw.textWant)}`);
  if (qw.text !== qw.textWant) fail('the text-only reply differs from transformers\' greedy reply');
  if (qw.textPieces.join('') !== qw.text) fail('the text-only pieces do not add up to the reply');
  if (qw.textTokens !== 0 || qw.textStats.prompt_tokens !== qw.textLen || qw.textStats.new_tokens !== 32) fail(`text-only session: ${qw.textTokens} visual tokens, stats ${JSON.stringify(qw.textStats)}, transformers' prompt ${qw.textLen}`);
  if (JSON.stringify(qw.stages) !== JSON.stringify(['ViT', 'done'])) fail(`qwen encode stages: ${JSON.stringify(qw.stages)}`);
  console.log(`qwen video reply: ${JSON.stringify(qw.video)}; transformers: ${JSON.stringify(qw.videoWant)}`);
  if (qw.video !== qw.videoWant) fail('the video reply without VGGT differs from transformers\' greedy reply');
  if (!(qw.videoTokens > 0) || qw.videoStats.prompt_tokens !== qw.videoLen) fail(`qwen video: ${qw.videoTokens} visual tokens, stats ${JSON.stringify(qw.videoStats)}, transformers' prompt ${qw.videoLen}`);

  // Device loss.
  for (const [what, e] of [['a reply in flight', r.lostInflight], ['ask', r.lostAsk], ['sample', r.lostSample], ['encode_video', r.lostEncode]]) named(`${what} after lose_device`, e, 'GpuDeviceLost');
  if (!r.isLost) fail('is_lost() is false after lose_device()');
  if (r.lostMs > 5000) fail(`the refusals after lose_device took ${r.lostMs} ms`);
  console.log(`after lose_device: refused in ${r.lostMs.toFixed(0)} ms: ${r.lostAsk.message}`);
  console.log('engine API: all checks passed');
});
