//! Pipeline cache keyed by family, entry point and variant: each WGSL variant compiles once.

use std::sync::Arc;

use super::contract::Contract;
use super::device::Gpu;
use super::shader::Variant;

pub struct Pipeline {
    pub raw: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub label: String,
    /// The storage slots (binding, name) a dispatch must bind (from the family's contract); the
    /// recorder checks every dispatch against them.
    pub slots: Vec<(u32, &'static str)>,
}

impl Gpu {
    /// The compiled pipeline of a family's entry point and variant (see `contract.rs`), compiled on
    /// first use; a WGSL error surfaces through `Gpu::check` at the next readback.
    pub fn contract_pipeline(&self, contract: &'static Contract, entry: &'static str, variant: &Variant) -> Arc<Pipeline> {
        let id = format!("{}::{}|{}", contract.name(), entry, variant.key());
        if let Some(p) = self.pipelines.lock().unwrap().get(&id) {
            return p.clone();
        }
        let slots = contract.active_slots(entry, variant);
        self.compile(id, contract.assemble(variant), entry, slots)
    }

    fn compile(&self, id: String, code: String, entry: &'static str, slots: Vec<(u32, &'static str)>) -> Arc<Pipeline> {
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
