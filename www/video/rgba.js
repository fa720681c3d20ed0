// VideoFrame -> packed RGBA bytes at the output size, with the container's rotation applied, via a
// 2D OffscreenCanvas (works on the main thread and in workers; scales and rotates in one draw).

/** Output size for a display size and an optional cap on the longer side (aspect kept, integers >= 1). */
export function outputSize(width, height, maxSide) {
  const s = maxSide > 0 ? Math.min(1, maxSide / Math.max(width, height)) : 1;
  return { width: Math.max(1, Math.round(width * s)), height: Math.max(1, Math.round(height * s)) };
}

export class FrameDrawer {
  /** rotation: clockwise degrees (0/90/180/270) to apply; width x height: the output (rotated) size. */
  constructor(width, height, rotation) {
    this.width = width;
    this.height = height;
    this.rotation = rotation;
    this.canvas = new OffscreenCanvas(width, height);
    // CPU-backed canvas: every draw is read back at once.
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true, alpha: false });
    this.ctx.imageSmoothingQuality = 'high';
  }

  /** Draw `frame` (not closed here) and copy its RGBA into out at byte offset `at`. */
  draw(frame, out, at) {
    const { ctx, width: w, height: h, rotation } = this;
    const [dw, dh] = rotation % 180 ? [h, w] : [w, h];
    ctx.setTransform(1, 0, 0, 1, w / 2, h / 2);
    ctx.rotate((rotation * Math.PI) / 180);
    ctx.drawImage(frame, -dw / 2, -dh / 2, dw, dh);
    out.set(ctx.getImageData(0, 0, w, h).data, at);
  }
}
