// The GPU side of the 3D view: one device with its canvas context, the two pipelines (points,
// segments), the scene's buffers and the render targets (multisampled colour, depth). Everything
// here is lost with the device; the view makes a new Renderer and uploads the scene again.
import { POINTS_WGSL, LINES_WGSL, UNIFORM_BYTES } from './shaders.js';
import { SEGMENT_BYTES } from './scene.js';

const DEPTH_FORMAT = 'depth24plus';

/** Requests an adapter and a device; a clear Error when WebGPU is missing or has no adapter. */
export async function requestDevice() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) throw new Error('WebGPU is not available in this browser (navigator.gpu is missing): the 3D view needs a browser with WebGPU enabled');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('WebGPU is available but no GPU adapter was found: the 3D view cannot render');
  // Big reconstructions (millions of points) need vertex buffers over the default 256 MiB cap.
  return adapter.requestDevice({ requiredLimits: { maxBufferSize: Math.min(adapter.limits.maxBufferSize, 2 ** 30) } });
}

export class Renderer {
  /** @param {GPUDevice} device @param {HTMLCanvasElement} canvas */
  constructor(device, canvas, sampleCount = 4) {
    this.device = device;
    this.canvas = canvas;
    this.sampleCount = sampleCount;
    this.format = navigator.gpu.getPreferredCanvasFormat();
    this.context = canvas.getContext('webgpu');
    if (!this.context) throw new Error('the canvas has no WebGPU context (is it already used for 2D or WebGL?)');
    this.context.configure({ device, format: this.format, alphaMode: 'opaque' });
    this.uniform = device.createBuffer({ size: UNIFORM_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const layout = device.createBindGroupLayout({
      entries: [{ binding: 0, visibility: GPUShaderStage.VERTEX | GPUShaderStage.FRAGMENT, buffer: { type: 'uniform' } }],
    });
    this.bindGroup = device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: this.uniform } }] });
    const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
    this.pointsPipeline = this.#pipeline(pipelineLayout, POINTS_WGSL, [
      { arrayStride: 12, stepMode: 'instance', attributes: [{ shaderLocation: 0, offset: 0, format: 'float32x3' }] },
      { arrayStride: 4, stepMode: 'instance', attributes: [{ shaderLocation: 1, offset: 0, format: 'unorm8x4' }] },
      { arrayStride: 4, stepMode: 'instance', attributes: [{ shaderLocation: 2, offset: 0, format: 'uint32' }] },
    ]);
    this.linesPipeline = this.#pipeline(pipelineLayout, LINES_WGSL, [{
      arrayStride: SEGMENT_BYTES,
      stepMode: 'instance',
      attributes: [
        { shaderLocation: 0, offset: 0, format: 'float32x3' },
        { shaderLocation: 1, offset: 12, format: 'float32x3' },
        { shaderLocation: 2, offset: 24, format: 'unorm8x4' },
        { shaderLocation: 3, offset: 28, format: 'float32' },
      ],
    }]);
    this.points = null; // {position, color, frame, count}
    this.segments = null; // {buffer, count}
    this.targets = null; // {width, height, color, depth}
  }

  #pipeline(layout, code, buffers) {
    const module = this.device.createShaderModule({ code });
    return this.device.createRenderPipeline({
      layout,
      vertex: { module, entryPoint: 'vs', buffers },
      fragment: { module, entryPoint: 'fs', targets: [{ format: this.format }] },
      primitive: { topology: 'triangle-strip' },
      depthStencil: { format: DEPTH_FORMAT, depthWriteEnabled: true, depthCompare: 'less-equal' },
      multisample: { count: this.sampleCount },
    });
  }

  #buffer(data, usage) {
    const buffer = this.device.createBuffer({ size: Math.max(4, Math.ceil(data.byteLength / 4) * 4), usage: usage | GPUBufferUsage.COPY_DST });
    if (data.byteLength > 0) this.device.queue.writeBuffer(buffer, 0, data.buffer ?? data, data.byteOffset ?? 0, data.byteLength);
    return buffer;
  }

  /** Replaces the point buffers: positions (Float32Array xyz), rgba (Uint8Array), frames (Uint32Array). */
  setPoints(positions, rgba, frames) {
    this.#dropPoints();
    const count = positions.length / 3;
    if (count === 0) return;
    const V = GPUBufferUsage.VERTEX;
    this.points = { position: this.#buffer(positions, V), color: this.#buffer(rgba, V), frame: this.#buffer(frames, V), count };
  }

  /** Replaces the segment instances ({data: ArrayBuffer, count}). */
  setSegments({ data, count }) {
    this.segments?.buffer.destroy();
    this.segments = count > 0 ? { buffer: this.#buffer(new Uint8Array(data), GPUBufferUsage.VERTEX), count } : null;
  }

  #dropPoints() {
    if (!this.points) return;
    for (const b of [this.points.position, this.points.color, this.points.frame]) b.destroy();
    this.points = null;
  }

  #ensureTargets(width, height) {
    const t = this.targets;
    if (t && t.width === width && t.height === height) return t;
    t?.color?.destroy();
    t?.depth.destroy();
    const size = [width, height];
    const color = this.sampleCount > 1
      ? this.device.createTexture({ size, format: this.format, sampleCount: this.sampleCount, usage: GPUTextureUsage.RENDER_ATTACHMENT })
      : null;
    const depth = this.device.createTexture({ size, format: DEPTH_FORMAT, sampleCount: this.sampleCount, usage: GPUTextureUsage.RENDER_ATTACHMENT });
    this.targets = { width, height, color, depth };
    return this.targets;
  }

  /**
   * Draws one frame into the canvas. `u`: {viewProj: Float32Array(16), background: [r,g,b] 0..1,
   * pointSize (pixels), highlight (frame index or -1)}.
   */
  draw(u) {
    const { width, height } = this.canvas;
    if (width === 0 || height === 0) return;
    const data = new ArrayBuffer(UNIFORM_BYTES);
    const f = new Float32Array(data);
    f.set(u.viewProj, 0);
    f.set([...u.background, 1], 16);
    f.set([width, height, u.pointSize], 20);
    new Int32Array(data)[23] = u.highlight;
    this.device.queue.writeBuffer(this.uniform, 0, data);

    const t = this.#ensureTargets(width, height);
    const target = this.context.getCurrentTexture().createView();
    const encoder = this.device.createCommandEncoder();
    const pass = encoder.beginRenderPass({
      colorAttachments: [{
        view: t.color ? t.color.createView() : target,
        resolveTarget: t.color ? target : undefined,
        clearValue: { r: u.background[0], g: u.background[1], b: u.background[2], a: 1 },
        loadOp: 'clear',
        storeOp: t.color ? 'discard' : 'store',
      }],
      depthStencilAttachment: { view: t.depth.createView(), depthClearValue: 1, depthLoadOp: 'clear', depthStoreOp: 'discard' },
    });
    pass.setBindGroup(0, this.bindGroup);
    if (this.points) {
      pass.setPipeline(this.pointsPipeline);
      pass.setVertexBuffer(0, this.points.position);
      pass.setVertexBuffer(1, this.points.color);
      pass.setVertexBuffer(2, this.points.frame);
      pass.draw(4, this.points.count);
    }
    if (this.segments) {
      pass.setPipeline(this.linesPipeline);
      pass.setVertexBuffer(0, this.segments.buffer);
      pass.draw(4, this.segments.count);
    }
    pass.end();
    this.device.queue.submit([encoder.finish()]);
  }

  /** Frees the GPU objects and the device (the view is done with it). */
  destroy() {
    this.#dropPoints();
    this.segments?.buffer.destroy();
    this.targets?.color?.destroy();
    this.targets?.depth.destroy();
    this.uniform.destroy();
    try { this.context.unconfigure(); } catch { /* already gone */ }
    this.device.destroy();
  }
}
