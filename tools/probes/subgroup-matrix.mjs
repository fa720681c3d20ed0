// Probe (issue 17 item 5): can Chromium's experimental subgroup-matrix WGSL extension be reached here?
// Reports, for headless Chromium under several flag sets (launched as tests/browser/chromium.mjs does)
// and for Dawn for Node (the npm `webgpu` package: null and Vulkan backends, with and without the
// allow_unsafe_apis toggle): the adapter's features and info, navigator.gpu.wgslLanguageFeatures,
// whether a device with `chromium-experimental-subgroup-matrix` can be requested, and what Tint says
// of small WGSL modules that `enable chromium_experimental_subgroup_matrix;` (module compilation
// messages and compute-pipeline creation). If the feature is granted it also runs an 8x8x8 f32/f16
// multiply and checks the result. Findings: docs/subgroup-matrix.md.
//   node tools/probes/subgroup-matrix.mjs [chromium|dawn]     (default: both)
import { chromium } from 'playwright-core';
import http from 'node:http';
import { create, globals } from 'webgpu';
import { executablePath, webgpuArgs } from '../../tests/browser/chromium.mjs';

// Self-contained (serialised into the page by page.evaluate): everything it needs is inside.
async function probe(gpu) {
  const out = {};
  const FEATURE = 'chromium-experimental-subgroup-matrix';
  try { out.wgslLanguageFeatures = [...(gpu.wgslLanguageFeatures ?? [])].sort(); } catch (e) { out.wgslLanguageFeatures = String(e); }
  const adapter = await gpu.requestAdapter();
  if (!adapter) { out.adapter = null; return out; }
  out.adapterFeatures = [...adapter.features].sort();
  out.hasSubgroupMatrix = adapter.features.has(FEATURE);
  out.hasSubgroups = adapter.features.has('subgroups');
  const info = adapter.info ?? {};
  out.adapterInfo = { vendor: info.vendor, architecture: info.architecture, description: info.description,
    subgroupMinSize: info.subgroupMinSize, subgroupMaxSize: info.subgroupMaxSize,
    subgroupMatrixConfigs: info.subgroupMatrixConfigs === undefined ? '(attribute absent)'
      : [...info.subgroupMatrixConfigs].map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K })) };
  // requestDevice with the feature (and, for comparison, a made-up name): what does the browser say?
  // (An adapter gives one device: each try asks for a fresh adapter.)
  const tryDevice = async (features) => {
    try { const d = await (await gpu.requestAdapter()).requestDevice({ requiredFeatures: features }); return { ok: true, device: d }; }
    catch (e) { return { ok: false, error: `${e.name}: ${e.message}` }; }
  };
  out.requestDevice = {};
  for (const f of [[FEATURE], ['subgroups', FEATURE], ['made-up-feature-for-comparison']]) {
    const r = await tryDevice(f);
    out.requestDevice[f.join('+')] = r.ok ? 'granted' : r.error;
    if (r.ok) r.device.destroy();
  }
  // The device to compile on: the most the adapter grants of these.
  const want = ['subgroups', 'shader-f16', FEATURE].filter((f) => adapter.features.has(f));
  const device = await (await gpu.requestAdapter()).requestDevice({ requiredFeatures: want });
  out.deviceFeatures = [...device.features].sort();
  const shaders = {
    enable_only: `enable chromium_experimental_subgroup_matrix;
@compute @workgroup_size(64) fn main() {}`,
    left_f32_decl_store_bool: `enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> c : array<f32>;
@compute @workgroup_size(SGMAX) fn main() {
  let m = subgroup_matrix_left<f32, 8, 8>(1.0);
  subgroupMatrixStore(&c, 0, m, false, 8);
}`,
    left_f32_decl_store_layout: `enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> c : array<f32>;
@compute @workgroup_size(SGMAX) fn main() {
  let m = subgroup_matrix_left<f32, 8, 8>(1.0);
  subgroupMatrixStore<row_major>(&c, 0, m, 8);
}`,
    left_f16_decl: `enable f16;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> c : array<f16>;
@compute @workgroup_size(SGMAX) fn main() {
  let m = subgroup_matrix_left<f16, 8, 8>(1.0h);
  subgroupMatrixStore(&c, 0, m, false, 8);
}`,
    mma_f32_bool: `enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> a : array<f32>;
@group(0) @binding(1) var<storage, read_write> b : array<f32>;
@group(0) @binding(2) var<storage, read_write> c : array<f32>;
@compute @workgroup_size(SGMAX) fn main() {
  let l = subgroupMatrixLoad<subgroup_matrix_left<f32, 8, 8>>(&a, 0, false, 8);
  let r = subgroupMatrixLoad<subgroup_matrix_right<f32, 8, 8>>(&b, 0, false, 8);
  let acc = subgroupMatrixMultiply<f32>(l, r);
  subgroupMatrixStore(&c, 0, acc, false, 8);
}`,
    mma_f32_layout: `enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> a : array<f32>;
@group(0) @binding(1) var<storage, read_write> b : array<f32>;
@group(0) @binding(2) var<storage, read_write> c : array<f32>;
@compute @workgroup_size(SGMAX) fn main() {
  let l = subgroupMatrixLoad<subgroup_matrix_left<f32, 8, 8>, row_major>(&a, 0, 8);
  let r = subgroupMatrixLoad<subgroup_matrix_right<f32, 8, 8>, row_major>(&b, 0, 8);
  let acc = subgroupMatrixMultiply<f32>(l, r);
  subgroupMatrixStore<row_major>(&c, 0, acc, 8);
}`,
  };
  const sgMax = info.subgroupMaxSize || 32;
  out.shaders = {};
  let runnable = null;
  for (const [name, src] of Object.entries(shaders)) {
    const code = src.replace('SGMAX', String(sgMax));  // x must be a multiple of maxSubgroupSize
    const r = {};
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: name, code });
    const ci = await module.getCompilationInfo();
    r.messages = ci.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message.split('\n')[0]}`);
    const e1 = await device.popErrorScope();
    r.moduleError = e1 ? e1.message.split('\n')[0] : null;
    device.pushErrorScope('validation');
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const e2 = await device.popErrorScope();
    r.pipeline = e2 ? `error: ${e2.message.split('\n').slice(0, 3).join(' | ')}` : 'created';
    out.shaders[name] = r;
    if (!e2 && name.startsWith('mma_') && !runnable) runnable = { name, pipeline };
  }
  // If a multiply pipeline was created: run it on 8x8 inputs and compare with a CPU product.
  if (runnable) {
    const A = Float32Array.from({ length: 64 }, (_, i) => ((i * 7) % 13) - 6);
    const B = Float32Array.from({ length: 64 }, (_, i) => ((i * 5) % 11) - 5);
    const mk = (data) => { const b = device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }); device.queue.writeBuffer(b, 0, data); return b; };
    const ba = mk(A), bb = mk(B), bc = mk(new Float32Array(64));
    const rd = device.createBuffer({ size: 256, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const bg = device.createBindGroup({ layout: runnable.pipeline.getBindGroupLayout(0), entries: [ba, bb, bc].map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(); pass.setPipeline(runnable.pipeline); pass.setBindGroup(0, bg); pass.dispatchWorkgroups(1); pass.end();
    enc.copyBufferToBuffer(bc, 0, rd, 0, 256);
    device.queue.submit([enc.finish()]);
    await rd.mapAsync(GPUMapMode.READ);
    const C = new Float32Array(rd.getMappedRange().slice(0));
    let maxErr = 0;
    for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) {
      let s = 0; for (let k = 0; k < 8; k++) s += A[i * 8 + k] * B[k * 8 + j];
      maxErr = Math.max(maxErr, Math.abs(s - C[i * 8 + j]));
    }
    out.run = { shader: runnable.name, maxAbsErr: maxErr, note: 'meaningless on Dawn\'s null backend, which executes nothing' };
  }
  device.destroy();
  return out;
}

// The path around wgpu: wgpu's web backend asks for a device with only the features in its own
// FEATURES_MAPPING (no `subgroups`, no subgroup matrix), through wasm-bindgen glue that calls
// `adapter.requestDevice(desc)` on the JS object. A page-side shim on GPUAdapter.prototype can add
// features to that call. This checks the mechanism with `subgroups` (which SwiftShader has): a call
// shaped like wgpu's (no requiredFeatures) gets a device with the added feature, and a WGSL module
// that `enable`s it compiles and runs. Self-contained, like probe().
async function shimProbe(gpu) {
  const EXTRA = ['subgroups', 'chromium-experimental-subgroup-matrix'];
  const original = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = function (desc = {}) {
    const have = new Set(desc.requiredFeatures ?? []);
    for (const f of EXTRA) if (this.features.has(f)) have.add(f);
    return original.call(this, { ...desc, requiredFeatures: [...have] });
  };
  try {
    const adapter = await gpu.requestAdapter();
    const device = await adapter.requestDevice({ requiredFeatures: [], label: 'as wgpu asks' });
    const out = { deviceFeaturesAfterShim: [...device.features].sort() };
    const code = `enable subgroups;
@group(0) @binding(0) var<storage, read_write> o : array<u32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i : u32, @builtin(subgroup_size) n : u32) {
  let s = subgroupAdd(1u);
  if (i == 0u) { o[0] = s; o[1] = n; }
}`;
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const err = await device.popErrorScope();
    out.enableSubgroupsModule = err ? `error: ${err.message.split('\n')[0]}` : 'compiled';
    if (!err) {
      const b = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const rd = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass(); pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: b } }] }));
      pass.dispatchWorkgroups(1); pass.end();
      enc.copyBufferToBuffer(b, 0, rd, 0, 16);
      device.queue.submit([enc.finish()]);
      await rd.mapAsync(GPUMapMode.READ);
      const [sum, size] = new Uint32Array(rd.getMappedRange().slice(0));
      out.run = { subgroupAddOfOnes: sum, subgroupSize: size, ok: sum === size };
    }
    device.destroy();
    return out;
  } finally {
    GPUAdapter.prototype.requestDevice = original;
  }
}

const show = (label, r) => console.log(`\n=== ${label}\n${JSON.stringify(r, null, 1)}`);
const which = process.argv[2] ?? 'both';

if (which === 'both' || which === 'chromium') {
  // localhost is a secure context, so navigator.gpu exists; the page itself is empty.
  const server = http.createServer((_, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><title>probe</title>'); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/`;
  const base = webgpuArgs.filter((a) => !a.startsWith('--enable-features='));
  const flagSets = {
    'without --enable-unsafe-webgpu (SwiftShader allowed by --enable-unsafe-swiftshader)': [...webgpuArgs.filter((a) => a !== '--enable-unsafe-webgpu'), '--enable-unsafe-swiftshader'],
    'tests/browser/chromium.mjs flags': webgpuArgs,
    '+ --enable-webgpu-developer-features': [...webgpuArgs, '--enable-webgpu-developer-features'],
    '+ WebGPUExperimentalFeatures + developer features + allow_unsafe_apis': [...base,
      '--enable-features=Vulkan,WebGPUExperimentalFeatures,WebGPUDeveloperFeatures',
      '--enable-webgpu-developer-features', '--enable-dawn-features=allow_unsafe_apis', '--enable-experimental-web-platform-features'],
    'default adapter (no --use-webgpu-adapter), all of the above': [...base.filter((a) => !a.startsWith('--use-webgpu-adapter')),
      '--enable-features=Vulkan,WebGPUExperimentalFeatures,WebGPUDeveloperFeatures',
      '--enable-webgpu-developer-features', '--enable-dawn-features=allow_unsafe_apis', '--enable-experimental-web-platform-features'],
  };
  for (const [label, args] of Object.entries(flagSets)) {
    const browser = await chromium.launch({ executablePath, headless: true, args });
    try {
      const page = await browser.newPage();
      await page.goto(url);
      const r = await page.evaluate(`(${probe.toString()})(navigator.gpu)`);
      if (label.startsWith('tests/')) r.shim = await page.evaluate(`(${shimProbe.toString()})(navigator.gpu)`);
      show(`Chromium ${browser.version()}: ${label}: ${args.join(' ')}`, r);
    } catch (e) {
      show(`Chromium: ${label}`, { error: String(e) });
    } finally {
      await browser.close();
    }
  }
  server.close();
}

if (which === 'both' || which === 'dawn') {
  Object.assign(globalThis, globals);
  for (const flags of [['backend=null'], ['backend=null', 'enable-dawn-features=allow_unsafe_apis'],
    ['backend=vulkan', 'enable-dawn-features=allow_unsafe_apis']]) {
    try {
      show(`Dawn for Node (npm webgpu): create(${JSON.stringify(flags)})`, await probe(create(flags)));
    } catch (e) {
      show(`Dawn for Node: ${flags.join(' ')}`, { error: String(e) });
    }
  }
}
process.exit(0);
