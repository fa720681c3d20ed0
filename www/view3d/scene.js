// Scene data for the 3D view, on the CPU: input checks, robust bounds, per-point GPU arrays, and
// the segments (camera frustums and the camera path) that the line pipeline draws.

/** Bytes per segment instance: a (3 f32), b (3 f32), colour (4 u8), width (f32). */
export const SEGMENT_BYTES = 32;

/** Checks a setScene argument; returns it normalised ({points, colors, pointFrame, cameras, selected, aspect, count}). */
export function checkScene(scene) {
  const { points, colors, pointFrame = null, cameras = new Float32Array(0), selected = [], aspect = 4 / 3 } = scene ?? {};
  if (!(points instanceof Float32Array) || points.length % 3 !== 0) throw new Error('setScene: points must be a Float32Array of xyz triples');
  const count = points.length / 3;
  if (!(colors instanceof Uint8Array) || colors.length !== count * 3) throw new Error(`setScene: colors must be a Uint8Array of ${count} rgb triples`);
  if (pointFrame !== null && (!(pointFrame instanceof Uint16Array) || pointFrame.length !== count)) {
    throw new Error(`setScene: pointFrame must be a Uint16Array of ${count} frame indices`);
  }
  if (!(cameras instanceof Float32Array) || cameras.length % 12 !== 0) throw new Error('setScene: cameras must be a Float32Array of 3x4 matrices (12 numbers each)');
  if (!Array.isArray(selected) && !ArrayBuffer.isView(selected)) throw new Error('setScene: selected must be an array of frame indices');
  if (!(aspect > 0)) throw new Error('setScene: aspect must be positive');
  return { points, colors, pointFrame, cameras, selected: new Set(Array.from(selected, Number)), aspect, count };
}

/** The q-quantile (0..1) of a sorted array. */
function quantile(sorted, q) {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i];
}

/**
 * Robust bounds: per axis the 2nd..98th percentile of (a sample of) the finite points, grown to
 * hold every camera centre. Returns {center, radius} (world coordinates), or null when empty.
 */
export function robustBounds(points, cameras, sample = 50000) {
  const n = points.length / 3;
  const step = Math.max(1, Math.floor(n / sample));
  const axes = [[], [], []];
  for (let i = 0; i < n; i += step) {
    const x = points[i * 3], y = points[i * 3 + 1], z = points[i * 3 + 2];
    if (Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z)) { axes[0].push(x); axes[1].push(y); axes[2].push(z); }
  }
  let lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  if (axes[0].length > 0) {
    for (let a = 0; a < 3; a++) {
      const s = Float64Array.from(axes[a]).sort();
      lo[a] = quantile(s, 0.02);
      hi[a] = quantile(s, 0.98);
    }
  }
  for (let c = 0; c < cameras.length / 12; c++) {
    const t = [cameras[c * 12 + 3], cameras[c * 12 + 7], cameras[c * 12 + 11]];
    if (!t.every(Number.isFinite)) continue;
    for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a], t[a]); hi[a] = Math.max(hi[a], t[a]); }
  }
  if (!(lo[0] <= hi[0])) return null;
  const center = [0, 1, 2].map((a) => (lo[a] + hi[a]) / 2);
  const radius = Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) / 2;
  return { center, radius: radius > 0 ? radius : 1 };
}

/** rgb triples → rgba quads (alpha 255), as the unorm8x4 vertex format needs 4-byte elements. */
export function rgba(colors, count) {
  const out = new Uint8Array(count * 4);
  for (let i = 0, j = 0; i < count; i++, j += 4) {
    out[j] = colors[i * 3];
    out[j + 1] = colors[i * 3 + 1];
    out[j + 2] = colors[i * 3 + 2];
    out[j + 3] = 255;
  }
  return out;
}

/** Frame index per point as u32 (the vertex format), zeros when absent. */
export function frames(pointFrame, count) {
  return pointFrame ? Uint32Array.from(pointFrame) : new Uint32Array(count);
}

/** Line styles: colour [r, g, b, a] 0..255, width in CSS pixels, frustum scale. */
export const STYLE = {
  path: { color: [150, 160, 175, 255], width: 1.5 },
  camera: { color: [120, 135, 160, 255], width: 1.25, scale: 1 },
  selected: { color: [255, 176, 0, 255], width: 2.5, scale: 1.6 },
  focused: { color: [0, 230, 255, 255], width: 3, scale: 2 },
};

/**
 * Segment instances (SEGMENT_BYTES each) for the camera path (centres in order) and one frustum per
 * camera: apex at the centre, an image rectangle at depth `size` (aspect w/h) and a small triangle
 * over the image's top edge (OpenCV y is down, so "top" is -y). Selected cameras are drawn in the
 * highlight colour and bigger; `focus` (or null) bigger still. `size` is in world units, `dpr`
 * scales the widths to drawing-buffer pixels.
 */
export function buildSegments(cameras, selected, focus, size, aspect, dpr) {
  const n = cameras.length / 12;
  const segs = [];
  const center = (c) => [cameras[c * 12 + 3], cameras[c * 12 + 7], cameras[c * 12 + 11]];
  for (let c = 0; c + 1 < n; c++) segs.push([center(c), center(c + 1), STYLE.path]);
  // Dim frustums first, highlighted ones last so they win ties in depth.
  const order = [...Array(n).keys()].sort((a, b) => rank(a) - rank(b));
  function rank(c) { return c === focus ? 2 : selected.has(c) ? 1 : 0; }
  for (const c of order) {
    const style = c === focus ? STYLE.focused : selected.has(c) ? STYLE.selected : STYLE.camera;
    const m = cameras.subarray(c * 12, c * 12 + 12);
    const world = ([x, y, z]) => [
      m[0] * x + m[1] * y + m[2] * z + m[3],
      m[4] * x + m[5] * y + m[6] * z + m[7],
      m[8] * x + m[9] * y + m[10] * z + m[11],
    ];
    const d = size * style.scale;
    const h = d * 0.5, w = h * aspect;
    const apex = world([0, 0, 0]);
    const k = [[-w, -h, d], [w, -h, d], [w, h, d], [-w, h, d]].map(world);
    for (let i = 0; i < 4; i++) {
      segs.push([apex, k[i], style]);
      segs.push([k[i], k[(i + 1) % 4], style]);
    }
    const tip = world([0, -h * 1.6, d]);
    segs.push([k[0], tip, style], [tip, k[1], style]);
  }
  const buf = new ArrayBuffer(Math.max(1, segs.length) * SEGMENT_BYTES);
  const f = new Float32Array(buf);
  const b = new Uint8Array(buf);
  segs.forEach(([a, e, style], i) => {
    f.set(a, i * 8);
    f.set(e, i * 8 + 3);
    b.set(style.color, i * SEGMENT_BYTES + 24);
    f[i * 8 + 7] = style.width * dpr;
  });
  return { data: buf, count: segs.length };
}
