// Compiles every kernel variant that tests/shader_variants.rs wrote (target/shader-variants/, or the
// directory given as the first argument or in $SHADER_VARIANTS_DIR) with Chrome's WGSL compiler,
// Tint, through Dawn for Node (the npm `webgpu` package): its `backend=null` adapter offers
// `shader-f16`, so the f16 variants, which SwiftShader cannot run, are compiled by a browser's
// compiler too. Each module: createShaderModule + getCompilationInfo, then a compute pipeline per
// entry point (layout 'auto') inside validation error scopes. Prints a row per failing variant,
// goes on past failures, exits non-zero if any failed.
//
//   cargo test --release --features cli --test shader_variants && node tests/shaders/tint.mjs
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = process.argv[2] || process.env.SHADER_VARIANTS_DIR || join(root, 'target', 'shader-variants');
let manifest;
try {
  manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
} catch (e) {
  console.error(`no variants in ${dir} (${e.message}): run cargo test --release --features cli --test shader_variants first`);
  process.exit(2);
}

Object.assign(globalThis, globals);
const gpu = create(['backend=null']);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('Dawn offers no null adapter');
  process.exit(2);
}
if (!adapter.features.has('shader-f16')) {
  console.error('the null adapter lacks shader-f16');
  process.exit(2);
}
// Default limits otherwise: the strictest a browser grants. Dawn's null adapter offers no more
// workgroup memory than that, so the variants sized for the 32 KiB most GPUs offer (chosen only
// where the adapter has it) are compiled as modules, without a pipeline, which checks the limits.
const device = await adapter.requestDevice({ requiredFeatures: ['shader-f16'] });
const storage = device.limits.maxComputeWorkgroupStorageSize;
let modulesOnly = 0;
let lost = null;
device.lost.then((info) => { lost = info; });

async function compile(v) {
  const code = readFileSync(join(dir, v.file), 'utf8');
  const errors = [];
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: v.file, code });
  const info = await module.getCompilationInfo();
  for (const m of info.messages) {
    if (m.type === 'error') errors.push(`line ${m.lineNum}:${m.linePos}: ${m.message}`);
  }
  const moduleError = await device.popErrorScope();
  if (moduleError && errors.length === 0) errors.push(moduleError.message);
  if (errors.length) return errors;
  if ((v.workgroup_bytes ?? 0) > storage) {
    modulesOnly++;
    return errors;
  }
  for (const entryPoint of v.entries) {
    device.pushErrorScope('validation');
    device.createComputePipeline({ label: `${v.file}:${entryPoint}`, layout: 'auto', compute: { module, entryPoint } });
    const e = await device.popErrorScope();
    if (e) errors.push(`${entryPoint}: ${e.message}`);
  }
  return errors;
}

let failed = 0;
let f16 = 0;
const t0 = performance.now();
// Cooperative-matrix variants are native only (wgpu's extension; WebGPU has no such feature).
const variants = manifest.variants.filter((v) => !v.native_only);
const nativeOnly = manifest.variants.length - variants.length;
for (const v of variants) {
  let errors;
  try {
    errors = await compile(v);
  } catch (e) {
    errors = [String(e?.message ?? e)];
  }
  if (lost) errors.push(`device lost: ${lost.message}`);
  if (v.f16) f16++;
  if (errors.length) {
    failed++;
    console.log(`FAIL ${v.file} ${v.family} [${v.entries.join(', ')}] ${v.variant}\n    ${errors.join('\n    ').replace(/\n/g, '\n    ')}`);
  }
  if (lost) break;
}
const n = variants.length;
const s = ((performance.now() - t0) / 1000).toFixed(1);
console.log(`tint: ${n - failed} of ${n} variants compile (${f16} with f16 activations) in ${s} s; ${nativeOnly} native-only cooperative-matrix variants left to naga; ${modulesOnly} sized past ${storage} bytes of workgroup memory compiled without a pipeline`);
device.destroy();
process.exit(failed ? 1 : 0);
