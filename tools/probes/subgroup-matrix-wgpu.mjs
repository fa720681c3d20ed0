// Probe (issue 17 item 5), the path around wgpu's feature list, end to end through the engine's own
// wasm (wgpu 30's webgpu backend): a page-side shim on GPUAdapter.prototype.requestDevice adds
// `subgroups` (and `chromium-experimental-subgroup-matrix`, where the adapter has it) to the device
// wgpu asks for; the engine's `gpu_info()` creates its device through wgpu; the probe then reports
// what wgpu passed to requestDevice, the features of the GPUDevice wgpu got, and compiles + runs an
// `enable subgroups;` module on that very device. Findings: docs/subgroup-matrix.md.
//   node tools/probes/subgroup-matrix-wgpu.mjs [PKG_DIR]    (a wasm-bindgen --target web build: pkg/ by default)
import { chromium } from 'playwright-core';
import path from 'node:path';
import { serve } from '../static-server.mjs';
import { executablePath, webgpuArgs } from '../../tests/browser/chromium.mjs';

const pkg = path.resolve(process.argv[2] ?? 'pkg');
const { server, url } = await serve(pkg);
const browser = await chromium.launch({ executablePath, headless: true, args: webgpuArgs });
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[browser] ${m.text()}`));
  await page.addInitScript(() => {
    const EXTRA = ['subgroups', 'chromium-experimental-subgroup-matrix'];
    const original = GPUAdapter.prototype.requestDevice;
    window.__requests = [];
    window.__devices = [];
    GPUAdapter.prototype.requestDevice = async function (desc = {}) {
      window.__requests.push({ requiredFeatures: [...(desc.requiredFeatures ?? [])], label: desc.label });
      const have = new Set(desc.requiredFeatures ?? []);
      for (const f of EXTRA) if (this.features.has(f)) have.add(f);
      const device = await original.call(this, { ...desc, requiredFeatures: [...have] });
      window.__devices.push(device);
      return device;
    };
  });
  await page.goto(`${url}/spatial_mllm_web.js`); // any same-origin page: a secure context on 127.0.0.1
  const r = await page.evaluate(async (base) => {
    const m = await import(`${base}/spatial_mllm_web.js`);
    await m.default();
    const info = await m.gpu_info();
    const device = window.__devices[0];
    const out = { gpuInfo: info, wgpuAskedFor: window.__requests, wgpuDeviceFeatures: [...device.features].sort() };
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: `enable subgroups;
@group(0) @binding(0) var<storage, read_write> o : array<u32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i : u32) {
  let s = subgroupAdd(1u);
  if (i == 0u) { o[0] = s; }
}` });
    device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const e = await device.popErrorScope();
    out.enableSubgroupsOnWgpusDevice = e ? `error: ${e.message.split('\n')[0]}` : 'compiled';
    return out;
  }, url);
  console.log(JSON.stringify(r, null, 1));
} finally {
  await browser.close();
  server.close();
}
