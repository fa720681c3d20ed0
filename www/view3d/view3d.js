// A WebGPU 3D view of VGGT's reconstruction: the point cloud in its frames' colours, the camera
// path, a frustum per camera (picked frames in the highlight colour and bigger), with orbit / pan /
// zoom controls. Renders on demand, follows the canvas size (devicePixelRatio included) and
// recreates its device when it is lost.
//
//   const view = await PointCloudView.create(canvas, { onError: (e) => show(e.message) });
//   view.setScene({ points, colors, pointFrame, cameras, selected });
//   view.highlightFrame(3); view.resetView(); view.destroy();
import { OrbitCamera } from './camera.js';
import { attachControls } from './controls.js';
import { requestDevice, Renderer } from './renderer.js';
import { checkScene, robustBounds, rgba, frames, buildSegments } from './scene.js';

const MAX_RECOVERIES = 3;
const token = Symbol('PointCloudView');

export class PointCloudView {
  #canvas;
  #opts;
  #renderer = null;
  #camera = new OrbitCamera();
  #scene = null; // checkScene's result plus {rgba, frames, frustumSize}
  #focus = null;
  #raf = 0;
  #waiters = [];
  #dpr = 1;
  #recoveries = 0;
  #destroyed = false;
  #observer = null;
  #detach = null;

  /**
   * A view drawing into `canvas` with its own GPUDevice. `opts`: onError(Error) for device loss and
   * GPU errors (default console.error), pointSize (CSS pixels, default 2), background ([r, g, b]
   * 0..1), sampleCount (1 or 4, default 4). Rejects with a clear Error when WebGPU is missing.
   */
  static async create(canvas, opts = {}) {
    if (typeof HTMLCanvasElement === 'undefined' || !(canvas instanceof HTMLCanvasElement)) {
      throw new Error('PointCloudView.create needs an HTMLCanvasElement');
    }
    const view = new PointCloudView(token, canvas, opts);
    await view.#start();
    view.#watchSize();
    view.#detach = attachControls(canvas, view.#camera, () => view.#request(), () => view.resetView());
    view.#request();
    return view;
  }

  constructor(key, canvas, opts) {
    if (key !== token) throw new Error('use PointCloudView.create(canvas, opts)');
    this.#canvas = canvas;
    this.#opts = {
      onError: opts.onError ?? null,
      pointSize: opts.pointSize ?? 2,
      background: opts.background ?? [0.07, 0.08, 0.1],
      sampleCount: opts.sampleCount ?? 4,
    };
  }

  /** The current GPUDevice (a new one after a device loss), or null while recovering. */
  get device() {
    return this.#renderer?.device ?? null;
  }

  /** Shows a reconstruction (see checkScene in scene.js) and fits the view to its robust bounds. */
  setScene(scene) {
    this.#alive();
    const s = checkScene(scene);
    s.rgba = rgba(s.colors, s.count);
    s.frames = frames(s.pointFrame, s.count);
    const bounds = robustBounds(s.points, s.cameras);
    s.radius = bounds?.radius ?? 1;
    s.frustumSize = frustumSize(s.cameras, s.radius);
    this.#scene = s;
    if (bounds) this.#camera.fit(bounds.center, bounds.radius);
    this.#upload();
    this.#request();
  }

  /** Emphasises frame i (its frustum, and its points when pointFrame was given); null clears. */
  highlightFrame(i) {
    this.#alive();
    if (i !== null && i !== undefined && !(Number.isInteger(i) && i >= 0)) throw new Error('highlightFrame takes a frame index or null');
    this.#focus = i ?? null;
    this.#uploadSegments();
    this.#request();
  }

  /** Back to the view fitted on the last setScene. */
  resetView() {
    this.#alive();
    this.#camera.reset();
    this.#request();
  }

  /** Resolves once the next frame has been drawn and the GPU has finished it. */
  rendered() {
    this.#alive();
    const done = new Promise((resolve) => this.#waiters.push(resolve));
    this.#request();
    return done;
  }

  /** Stops rendering, removes the listeners and frees the device. */
  destroy() {
    if (this.#destroyed) return;
    this.#destroyed = true;
    cancelAnimationFrame(this.#raf);
    this.#observer?.disconnect();
    this.#detach?.();
    this.#renderer?.destroy();
    this.#renderer = null;
    for (const w of this.#waiters.splice(0)) w();
  }

  #alive() {
    if (this.#destroyed) throw new Error('this PointCloudView was destroyed');
  }

  #report(error) {
    (this.#opts.onError ?? console.error)(error instanceof Error ? error : new Error(String(error)));
  }

  async #start() {
    const device = await requestDevice();
    if (this.#destroyed) { device.destroy(); return; }
    const renderer = new Renderer(device, this.#canvas, this.#opts.sampleCount);
    this.#renderer = renderer;
    device.onuncapturederror = (e) => this.#report(new Error(`WebGPU error in the 3D view: ${e.error?.message ?? e.error}`));
    device.lost.then((info) => this.#lost(renderer, info));
  }

  async #lost(renderer, info) {
    if (this.#destroyed || renderer !== this.#renderer) return;
    this.#renderer = null;
    const why = `the 3D view's WebGPU device was lost (${info.reason ?? 'unknown'}: ${info.message || 'no message'})`;
    if (++this.#recoveries > MAX_RECOVERIES) {
      this.#report(new Error(`${why}; giving up after ${MAX_RECOVERIES} recoveries`));
      return;
    }
    this.#report(new Error(`${why}; recreating it`));
    try {
      await this.#start();
      if (this.#destroyed) return;
      this.#upload();
      this.#request();
    } catch (e) {
      this.#report(e);
    }
  }

  #upload() {
    const s = this.#scene;
    if (!this.#renderer || !s) return;
    this.#renderer.setPoints(s.points, s.rgba, s.frames);
    this.#uploadSegments();
  }

  #uploadSegments() {
    const s = this.#scene;
    if (!this.#renderer || !s) return;
    this.#renderer.setSegments(buildSegments(s.cameras, s.selected, this.#focus, s.frustumSize, s.aspect, this.#dpr));
  }

  #watchSize() {
    const canvas = this.#canvas;
    const apply = (w, h) => {
      w = Math.max(1, Math.round(w));
      h = Math.max(1, Math.round(h));
      const dpr = canvas.clientWidth > 0 ? w / canvas.clientWidth : globalThis.devicePixelRatio || 1;
      if (Math.abs(dpr - this.#dpr) > 1e-3) { this.#dpr = dpr; this.#uploadSegments(); }
      if (canvas.width === w && canvas.height === h) return;
      canvas.width = w;
      canvas.height = h;
      this.#render(); // now, so the resized (cleared) canvas never shows
    };
    const dpr = globalThis.devicePixelRatio || 1;
    if (canvas.clientWidth > 0 && canvas.clientHeight > 0) apply(canvas.clientWidth * dpr, canvas.clientHeight * dpr);
    this.#observer = new ResizeObserver(([entry]) => {
      // The exact device-pixel box where it agrees with CSS size x devicePixelRatio (it does not
      // under some DPR emulation, e.g. headless test browsers), else the product.
      const css = entry.contentBoxSize?.[0];
      const ratio = globalThis.devicePixelRatio || 1;
      const w = (css?.inlineSize ?? entry.contentRect.width) * ratio, h = (css?.blockSize ?? entry.contentRect.height) * ratio;
      const box = entry.devicePixelContentBoxSize?.[0];
      if (box && Math.abs(box.inlineSize - w) <= 2 && Math.abs(box.blockSize - h) <= 2) apply(box.inlineSize, box.blockSize);
      else apply(w, h);
    });
    try {
      this.#observer.observe(canvas, { box: 'device-pixel-content-box' });
    } catch {
      this.#observer.observe(canvas);
    }
  }

  #request() {
    if (this.#raf || this.#destroyed) return;
    this.#raf = requestAnimationFrame(() => {
      this.#raf = 0;
      this.#render();
    });
  }

  #render() {
    const r = this.#renderer;
    if (!r || this.#destroyed) return;
    const { width, height } = this.#canvas;
    const bg = this.#opts.background;
    const focus = this.#scene?.pointFrame && this.#focus !== null ? this.#focus : -1;
    r.draw({ viewProj: this.#camera.viewProj(width / Math.max(height, 1)), background: bg, pointSize: this.#opts.pointSize * this.#dpr, highlight: focus });
    const waiters = this.#waiters.splice(0);
    if (waiters.length) r.device.queue.onSubmittedWorkDone().then(() => waiters.forEach((w) => w()), () => waiters.forEach((w) => w()));
  }
}

/** Frustum depth in world units: most of the typical step between cameras, within 2%..8% of the scene radius. */
function frustumSize(cameras, radius) {
  const n = cameras.length / 12;
  const steps = [];
  for (let c = 0; c + 1 < n; c++) {
    const d = Math.hypot(cameras[c * 12 + 3] - cameras[c * 12 + 15], cameras[c * 12 + 7] - cameras[c * 12 + 19], cameras[c * 12 + 11] - cameras[c * 12 + 23]);
    if (Number.isFinite(d) && d > 0) steps.push(d);
  }
  steps.sort((a, b) => a - b);
  const typical = steps.length ? steps[steps.length >> 1] * 0.8 : radius * 0.06;
  return Math.min(radius * 0.08, Math.max(radius * 0.02, typical));
}
