//! Pipeline cache keyed by family, entry point and variant: each WGSL variant compiles once.

use std::sync::Arc;

use super::contract::Contract;
use super::device::Gpu;
use super::shader::{assemble, ShaderSource, Variant};

pub struct Pipeline {
    pub raw: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub label: String,
    /// The storage slots (binding, name) a dispatch must bind, for families with a contract; the
    /// recorder checks every dispatch against them.
    pub slots: Option<Vec<(u32, &'static str)>>,
}

/// The identity of a compiled pipeline.
pub struct PipelineKey<'a> {
    pub src: &'a ShaderSource,
    pub entry: &'static str,
    pub variant: &'a Variant,
}

impl Gpu {
    /// The compiled pipeline for this family, entry point and variant (compiled on first use).
    /// A WGSL error surfaces through `Gpu::check` at the next readback.
    pub fn pipeline(&self, key: PipelineKey<'_>) -> Arc<Pipeline> {
        let id = format!("{}::{}|{}", key.src.name, key.entry, key.variant.key());
        if let Some(p) = self.pipelines.lock().unwrap().get(&id) {
            return p.clone();
        }
        self.compile(id, assemble(key.src, key.variant), key.entry, None)
    }

    /// The compiled pipeline of a family with a contract (see `contract.rs`).
    pub fn contract_pipeline(&self, contract: &'static Contract, entry: &'static str, variant: &Variant) -> Arc<Pipeline> {
        let id = format!("{}::{}|{}", contract.name(), entry, variant.key());
        if let Some(p) = self.pipelines.lock().unwrap().get(&id) {
            return p.clone();
        }
        let slots = contract.active_slots(entry, variant);
        self.compile(id, contract.assemble(variant), entry, Some(slots))
    }

    fn compile(&self, id: String, code: String, entry: &'static str, slots: Option<Vec<(u32, &'static str)>>) -> Arc<Pipeline> {
        let desc = wgpu::ShaderModuleDescriptor { label: Some(&id), source: wgpu::ShaderSource::Wgsl(code.into()) };
        let module = match shader_checks() {
            None => self.device.create_shader_module(desc),
            // SAFETY: every loop of this project's kernels ends (bounded by uniform sizes), which
            // is what dropping loop bounding asks; `none` leans on the launchers' shape checks
            // and the driver's robust buffer access instead of wgpu's bounds checks.
            Some(checks) => unsafe { self.device.create_shader_module_trusted(desc, checks) },
        };
        let raw = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&id),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = raw.get_bind_group_layout(0);
        let p = Arc::new(Pipeline { raw, layout, label: id.clone(), slots });
        self.pipelines.lock().unwrap().insert(id, p.clone());
        p
    }
}

/// The runtime checks wgpu compiles into native shaders. By default every check except loop
/// bounding: the counter wgpu puts in each loop stops the driver from unrolling it, which made
/// VGGT 2.4x slower on an H200 (1.68 s instead of 4.02 s for 8 frames; see docs/figures.md), and every
/// loop of these kernels ends anyway. `SPATIAL_MLLM_SHADER_CHECKS=full` keeps loop bounding
/// too; `none` also drops wgpu's own bounds checks (leaving the driver's robust buffer access),
/// which is for measuring only. In the browser, WebGPU applies its own checks whatever this says.
fn shader_checks() -> Option<wgpu::ShaderRuntimeChecks> {
    #[cfg(not(target_arch = "wasm32"))]
    match std::env::var("SPATIAL_MLLM_SHADER_CHECKS").as_deref() {
        Ok("full") => None,
        Ok("none") => Some(wgpu::ShaderRuntimeChecks::unchecked()),
        _ => Some(wgpu::ShaderRuntimeChecks { force_loop_bounding: false, ..wgpu::ShaderRuntimeChecks::checked() }),
    }
    #[cfg(target_arch = "wasm32")]
    None
}
