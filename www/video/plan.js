// Which compressed frames to feed the decoder for a set of wanted frames (pure functions, no I/O).
// Frames are listed in decode order as {pts, key}; a wanted frame needs everything from the keyframe
// before it up to itself, and nothing from GOPs holding no wanted frame.

/** Decode indices in presentation order (ties keep decode order). */
export function presentationOrder(frames) {
  return Array.from(frames.keys()).sort((a, b) => frames[a].pts - frames[b].pts || a - b);
}

/**
 * The decode index from which frame d can be decoded: the last keyframe at or before d in decode
 * order that is not shown after d (a frame shown before its GOP's keyframe, an open-GOP leading
 * picture, needs the GOP before). -1 when there is none.
 */
export function startOf(frames, d) {
  for (let s = d; s >= 0; s--) if (frames[s].key && frames[s].pts <= frames[d].pts) return s;
  return -1;
}

/**
 * Runs [{from, to}] (decode indices, inclusive) that decode every wanted frame: one per stretch of
 * wanted frames whose GOPs touch, so the decoder is flushed only where the feed jumps.
 * Throws a RangeError naming a frame that has no keyframe before it.
 */
export function planRuns(frames, wantedDecodeIndices) {
  const runs = [];
  for (const d of [...new Set(wantedDecodeIndices)].sort((a, b) => a - b)) {
    const s = startOf(frames, d);
    if (s < 0) throw new RangeError(`frame ${d} (decode order) has no keyframe before it`);
    const cur = runs[runs.length - 1];
    if (cur && s <= cur.to + 1) cur.to = Math.max(cur.to, d);
    else runs.push({ from: s, to: d });
  }
  return runs;
}
