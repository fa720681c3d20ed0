//! The memory plan of VGGT and the connector at real sizes, far too large to run on the test
//! machines: the real forward passes in dry-run mode (`Gpu::set_dry_run`: every allocation, shape
//! check and chunking decision happens, no kernel runs) on full-size weights that are never
//! written. Reports the largest single tensor, which must fit the storage-binding limit (WebGPU's
//! default is 128 MiB) whatever the total.

use std::collections::HashMap;

use crate::gpu::{Gpu, Recorder};
use crate::model::spatial::{Connector, Generation};
use crate::model::vggt::{Aggregator, Frames, GeometrySource, Vggt};
use crate::model::{MResult, Params};
use crate::weights::layout::ModelKind;
use crate::weights::loader::GpuParam;
use crate::weights::policy::Policy;
use crate::weights::shapes::{expected, VggtDims};
use crate::weights::writer::{matrix_dims, row_bytes};
use crate::weights::Weight;

/// WebGPU's default `maxStorageBufferBindingSize`.
pub const WEBGPU_DEFAULT_BINDING: u64 = 128 << 20;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The tensors of `kind` (default config) whose names start with one of `prefixes`, in the default
/// policy's formats, contents never written (they read as zeros). Matrices are split into row
/// parts that fit the binding limit, as the converter's shards split them.
pub fn placeholder_params(gpu: &Gpu, kind: ModelKind, prefixes: &[&str]) -> Result<Params, String> {
    let cfg = serde_json::json!({});
    let policy = Policy::default();
    let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
    let mut map = HashMap::new();
    for e in expected(kind, &cfg).into_iter().filter(|e| prefixes.iter().any(|p| e.name.starts_with(p))) {
        let n: usize = e.shape.iter().product();
        let p = if e.shape.len() <= 1 {
            GpuParam::Vector(gpu.upload_f32(&vec![0.0; n], &[n]).map_err(err)?)
        } else {
            let (rows, cols) = matrix_dims(&e.shape);
            let format = policy.format(&e.name, &e.shape);
            // Even part sizes keep quantised parts' scales word-aligned.
            let per_part = (((limit / 2) / row_bytes(format, cols)) as usize / 2 * 2).max(2);
            let parts = (0..rows)
                .step_by(per_part)
                .map(|r0| Weight::placeholder(gpu, format, per_part.min(rows - r0), cols, &e.name).map_err(err))
                .collect::<Result<Vec<_>, _>>()?;
            GpuParam::Matrix(parts)
        };
        map.insert(e.name, p);
    }
    Ok(Params::new(map))
}

/// Run `f` without computing anything and return the largest tensor it allocated (bytes, shape).
pub fn largest_tensor<T>(gpu: &Gpu, f: impl FnOnce() -> MResult<T>) -> Result<(u64, Vec<usize>), String> {
    gpu.set_dry_run(true);
    gpu.stats.reset_largest();
    let out = f();
    gpu.set_dry_run(false);
    let largest = gpu.stats.largest_alloc();
    out.map_err(err)?;
    Ok(largest)
}

fn frames(count: usize, height: usize, width: usize) -> Vec<f32> {
    vec![0.5; count * 3 * height * width]
}

/// VGGT-1B (aggregator, camera, depth and point heads) with placeholder weights.
pub async fn vggt_1b(gpu: &Gpu) -> Result<Vggt, String> {
    let params = placeholder_params(gpu, ModelKind::Vggt, &["vggt."])?;
    Vggt::new(gpu, ModelKind::Vggt.id(), &serde_json::json!({}), &params).await.map_err(err)
}

/// Space-aware sampling's GPU work on `count` frames of `height` x `width` px: the aggregator,
/// then the heads of `source`.
pub fn plan_geometry(gpu: &Gpu, vggt: &Vggt, count: usize, height: usize, width: usize, source: GeometrySource) -> Result<(u64, Vec<usize>), String> {
    let px = frames(count, height, width);
    let f = Frames { pixels: &px, count, height, width };
    largest_tensor(gpu, || vggt.geometry(gpu, &f, source))
}

/// The aggregator alone on `count` frames of `height` x `width` px, keeping `keep`.
pub fn plan_aggregator(gpu: &Gpu, agg: &Aggregator, count: usize, height: usize, width: usize, keep: &[usize]) -> Result<(u64, Vec<usize>), String> {
    let px = frames(count, height, width);
    let f = Frames { pixels: &px, count, height, width };
    largest_tensor(gpu, || {
        let mut rec = Recorder::new(gpu);
        let out = agg.forward(&mut rec, &f, keep, None)?;
        rec.submit()?;
        Ok(out)
    })
}

/// The aggregator and a connector of Spatial-MLLM (VGGT-1B dims, hidden 2048) with placeholder
/// weights.
pub async fn spatial_encoder(gpu: &Gpu, generation: Generation) -> Result<(Aggregator, Connector), String> {
    let kind = match generation {
        Generation::V10 => ModelKind::SpatialMllmV10,
        Generation::V11 => ModelKind::SpatialMllmV11,
    };
    let params = placeholder_params(gpu, kind, &["vggt.aggregator.", "connector."])?;
    let dims = VggtDims::from_config(kind, &serde_json::json!({}));
    let connector = Connector::new(gpu, &params, generation, 2 * dims.dim, 2048).map_err(err)?;
    Ok((Aggregator::new(gpu, dims, &params).await.map_err(err)?, connector))
}

/// `encode_video`'s spatial branch on `count` frames of `height` x `width` px: the aggregator's
/// last layer into the connector.
pub fn plan_spatial(gpu: &Gpu, agg: &Aggregator, connector: &Connector, count: usize, height: usize, width: usize) -> Result<(u64, Vec<usize>), String> {
    let px = frames(count, height, width);
    let f = Frames { pixels: &px, count, height, width };
    largest_tensor(gpu, || {
        let mut rec = Recorder::new(gpu);
        let out = agg.forward(&mut rec, &f, &[agg.dims.depth - 1], None)?;
        let e3d = connector.project(&mut rec, &out.layers[0].1, count, out.patch_start, out.grid)?;
        rec.submit()?;
        Ok(e3d)
    })
}
