// From a video file to the frames the model sees: uniform picks as qwen-vl-utils makes them, or
// space-aware picks (VGGT over candidate frames, greedy coverage) by the engine (engine/engine.js). Only the
// frames needed are decoded.

/** Decode at most this many pixels on the longer side (the ViT's budget for 16 frames of 4:3 is
 * 644 x 476; the sampler uses 224 or 518 px). */
export const DECODE_MAX_SIDE = 644;

/** qwen-vl-utils' indices: torch.linspace(0, total - 1, n).round() (round half to even). */
export function uniformIndices(total, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const v = n === 1 ? 0 : (i * (total - 1)) / (n - 1);
    const f = Math.floor(v);
    const d = v - f;
    out.push(d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f);
  }
  return out;
}

/** How many frames to use: the wanted count, at most the video's, even (the ViT pairs frames); a
 * one-frame video is used as it is (the engine repeats the frame into one pair, as the CLI does). */
export function frameCount(total, wanted) {
  if (total < 1) throw Object.assign(new Error('this video has no frames'), { name: 'BadInput' });
  if (total === 1) return 1;
  const n = Math.min(wanted, total);
  return n - (n % 2);
}

function pickFrames(decoded, positions) {
  const { width, height } = decoded;
  const size = width * height * 4;
  const rgba = new Uint8Array(positions.length * size);
  positions.forEach((p, i) => rgba.set(decoded.rgba.subarray(p * size, (p + 1) * size), i * size));
  return { rgba, count: positions.length, width, height };
}

/**
 * The frames for the model: {frames: {rgba, count, width, height}, times, indices, sample} where
 * `sample` is the sampler's result (points, colours, cameras, selected) or null for uniform picks.
 * `stage(name)` reports progress.
 */
export async function chooseFrames({ engine, source, wanted, mode, hasSampler, stage }) {
  const total = source.frameCount;
  const k = frameCount(total, wanted);
  const onProgress = (done, n) => stage('decoding frames', `${done} of ${n}`);
  if (mode !== 'uniform' && hasSampler && k > 1) {
    const fast = mode === 'fast';
    const candidates = await engine.candidates(total, { fast });
    stage('decoding frames', `0 of ${candidates.length}`);
    const decoded = await source.decodeFrames(candidates, { maxSide: DECODE_MAX_SIDE, onProgress });
    stage('sampling: VGGT');
    const frames = { rgba: decoded.rgba, count: candidates.length, width: decoded.width, height: decoded.height };
    const sample = await engine.sample(frames, { k, fast, onProgress: (e) => stage(e.stage) });
    const positions = Array.from(sample.selected);
    return {
      frames: pickFrames(decoded, positions),
      times: positions.map((p) => decoded.times[p]),
      indices: positions.map((p) => candidates[p]),
      candidateCount: candidates.length,
      sample,
    };
  }
  const indices = uniformIndices(total, k);
  stage('decoding frames', `0 of ${k}`);
  const decoded = await source.decodeFrames(indices, { maxSide: DECODE_MAX_SIDE, onProgress });
  return { frames: { rgba: decoded.rgba, count: k, width: decoded.width, height: decoded.height }, times: decoded.times, indices, sample: null };
}
