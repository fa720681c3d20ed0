//! Pipeline cache keyed by family, entry point and variant: each WGSL variant compiles once.

use std::sync::Arc;

use super::device::Gpu;
use super::shader::{assemble, ShaderSource, Variant};

pub struct Pipeline {
    pub raw: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub label: String,
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
        let code = assemble(key.src, key.variant);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&id),
            source: wgpu::ShaderSource::Wgsl(code.into()),
        });
        let raw = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&id),
            layout: None,
            module: &module,
            entry_point: Some(key.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = raw.get_bind_group_layout(0);
        let p = Arc::new(Pipeline { raw, layout, label: id.clone() });
        self.pipelines.lock().unwrap().insert(id, p.clone());
        p
    }
}
