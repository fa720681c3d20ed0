// Camera math for the 3D view: column-major 4x4 matrices (as WGSL's mat4x4f reads them) and an
// orbit camera (target, distance, azimuth, elevation) in display coordinates.
//
// Display coordinates are VGGT's world (OpenCV convention: x right, y down, z forward) turned 180°
// about x: (x, -y, -z). That keeps handedness, puts "up" at +y and makes the first camera look
// down -z as a GL-style camera does. FLIP maps world to display.

/** World (OpenCV) → display: diag(1, -1, -1, 1). */
export const FLIP = new Float32Array([1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1]);

/** a · b for column-major 4x4 matrices. */
export function multiply(a, b) {
  const o = new Float32Array(16);
  for (let c = 0; c < 4; c++) {
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      o[c * 4 + r] = s;
    }
  }
  return o;
}

/** Perspective projection to WebGPU clip space (depth 0 at near, 1 at far). */
export function perspective(fovY, aspect, near, far) {
  const f = 1 / Math.tan(fovY / 2);
  const o = new Float32Array(16);
  o[0] = f / aspect;
  o[5] = f;
  o[10] = far / (near - far);
  o[11] = -1;
  o[14] = (near * far) / (near - far);
  return o;
}

const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a) => { const l = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / l, a[1] / l, a[2] / l]; };
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** View matrix of an eye at `eye` looking at `target` with `up` roughly up (right-handed, -z forward). */
export function lookAt(eye, target, up) {
  const z = norm(sub(eye, target));
  const x = norm(cross(up, z));
  const y = cross(z, x);
  return new Float32Array([
    x[0], y[0], z[0], 0,
    x[1], y[1], z[1], 0,
    x[2], y[2], z[2], 0,
    -dot(x, eye), -dot(y, eye), -dot(z, eye), 1,
  ]);
}

const MAX_ELEVATION = (89 * Math.PI) / 180;

/** An orbit camera around `target` (display coordinates). */
export class OrbitCamera {
  constructor() {
    this.fovY = (50 * Math.PI) / 180;
    this.home = { target: [0, 0, 0], distance: 1, azimuth: 0, elevation: 0.35, radius: 1 };
    this.reset();
  }

  /** Frames a sphere (centre in world coordinates, radius) from behind and above the first camera. */
  fit(centerWorld, radius) {
    const r = radius > 0 && Number.isFinite(radius) ? radius : 1;
    const target = [centerWorld[0], -centerWorld[1], -centerWorld[2]];
    const distance = (r / Math.sin(this.fovY / 2)) * 1.05;
    this.home = { target, distance, azimuth: 0, elevation: 0.35, radius: r };
    this.reset();
  }

  reset() {
    const h = this.home;
    this.target = [...h.target];
    this.distance = h.distance;
    this.azimuth = h.azimuth;
    this.elevation = h.elevation;
  }

  eye() {
    const ce = Math.cos(this.elevation);
    const d = this.distance;
    return [
      this.target[0] + d * ce * Math.sin(this.azimuth),
      this.target[1] + d * Math.sin(this.elevation),
      this.target[2] + d * ce * Math.cos(this.azimuth),
    ];
  }

  /** Rotates by pixel deltas (a full drag across `size` pixels turns about 180°). */
  orbit(dx, dy, size) {
    const k = Math.PI / Math.max(size, 1);
    this.azimuth -= dx * k;
    this.elevation = Math.min(MAX_ELEVATION, Math.max(-MAX_ELEVATION, this.elevation + dy * k));
  }

  /** Moves the target so the scene follows the pointer; `height` is the viewport height in pixels. */
  pan(dx, dy, height) {
    const perPixel = (2 * this.distance * Math.tan(this.fovY / 2)) / Math.max(height, 1);
    const view = lookAt(this.eye(), this.target, [0, 1, 0]);
    const right = [view[0], view[4], view[8]];
    const up = [view[1], view[5], view[9]];
    for (let i = 0; i < 3; i++) this.target[i] += (-dx * right[i] + dy * up[i]) * perPixel;
  }

  /** Multiplies the distance by `factor` (> 1 zooms out), within sane limits of the fitted size. */
  zoom(factor) {
    const r = this.home.radius;
    this.distance = Math.min(r * 100, Math.max(r * 1e-3, this.distance * factor));
  }

  /** viewProj (column-major, world → clip) for a viewport aspect ratio. */
  viewProj(aspect) {
    const r = this.home.radius;
    const near = Math.max(this.distance * 0.01, r * 1e-4);
    const far = this.distance + r * 20;
    const view = lookAt(this.eye(), this.target, [0, 1, 0]);
    return multiply(perspective(this.fovY, aspect, near, far), multiply(view, FLIP));
  }
}
