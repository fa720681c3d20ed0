//! The memory plan of VGGT and the connector at real sizes, far too large to run on the test
//! machines: the real forward passes in dry-run mode (`Gpu::set_dry_run`: every allocation, shape
//! check and chunking decision happens, no kernel runs) on full-size weights that are never
//! written. Reports the largest single tensor, which must fit the storage-binding limit (WebGPU's
//! default is 128 MiB) whatever the total, and the peak of activation memory over a whole video
//! question (`plan_video_question`), stage by stage.

use std::collections::HashMap;

use crate::gpu::{Gpu, Recorder};
use crate::model::qwen::generate::GenerationConfig;
use crate::model::qwen::VisionModel;
use crate::model::spatial::{open_session, Connector, Generation, SpatialMllm, Visual};
use crate::model::vggt::{Aggregator, Frames, GeometrySource, Vggt};
use crate::preprocess::VitInput;
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
    Ok(placeholders(gpu, kind, prefixes)?.0)
}

/// `placeholder_params` and the bytes of their buffers (what the GPU holds for the weights).
fn placeholders(gpu: &Gpu, kind: ModelKind, prefixes: &[&str]) -> Result<(Params, u64), String> {
    let cfg = serde_json::json!({});
    let policy = Policy::default();
    let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
    let mut map = HashMap::new();
    let mut bytes = 0;
    for e in expected(kind, &cfg).into_iter().filter(|e| prefixes.iter().any(|p| e.name.starts_with(p))) {
        let n: usize = e.shape.iter().product();
        let p = if e.shape.len() <= 1 {
            let v = gpu.upload_f32(&vec![0.0; n], &[n]).map_err(err)?;
            bytes += v.bytes();
            GpuParam::Vector(v)
        } else {
            let (rows, cols) = matrix_dims(&e.shape);
            let format = policy.format(&e.name, &e.shape);
            // Even part sizes keep quantised parts' scales word-aligned.
            let per_part = (((limit / 2) / row_bytes(format, cols)) as usize / 2 * 2).max(2);
            let parts = (0..rows)
                .step_by(per_part)
                .map(|r0| Weight::placeholder(gpu, format, per_part.min(rows - r0), cols, &e.name).map_err(err))
                .collect::<Result<Vec<_>, _>>()?;
            bytes += parts.iter().map(|w| w.buf.size()).sum::<u64>();
            GpuParam::Matrix(parts)
        };
        map.insert(e.name, p);
    }
    Ok((Params::new(map), bytes))
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
    let kind = kind_of(generation);
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

fn kind_of(generation: Generation) -> ModelKind {
    match generation {
        Generation::V10 => ModelKind::SpatialMllmV10,
        Generation::V11 => ModelKind::SpatialMllmV11,
    }
}

/// The whole Spatial-MLLM of `generation` at its real config (Qwen2.5-VL-3B + VGGT-1B's
/// aggregator + the connector) with placeholder weights, and the bytes of its weights.
pub async fn spatial_mllm(gpu: &Gpu, generation: Generation) -> Result<(SpatialMllm, u64), String> {
    let kind = kind_of(generation);
    // Every tensor of the package (the GPU holds them all once loaded).
    let (params, weights) = placeholders(gpu, kind, &[""])?;
    let m = SpatialMllm::new(gpu, kind.id(), &serde_json::json!({}), &params).await.map_err(err)?;
    Ok((m, weights))
}

/// Activation memory of one stage of a planned question.
#[derive(Clone, Debug)]
pub struct StagePeak {
    pub stage: &'static str,
    /// The most the pool held during the stage (buffers in use and kept for reuse).
    pub peak: u64,
    /// What it still held when the stage ended (carried into the next one, or kept for reuse).
    pub after: u64,
}

/// The memory plan of one video question: activations stage by stage (above what the loaded
/// model held before), their peak, and the largest single tensor.
#[derive(Clone, Debug)]
pub struct QuestionPlan {
    pub stages: Vec<StagePeak>,
    pub peak: u64,
    pub largest: (u64, Vec<usize>),
}

impl std::fmt::Display for QuestionPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        for s in &self.stages {
            writeln!(f, "  {:<28} peak {:>7.1} MiB, held after {:>7.1} MiB", s.stage, mib(s.peak), mib(s.after))?;
        }
        write!(f, "  peak activations {:.1} MiB; largest tensor {:?}, {:.1} MiB", mib(self.peak), self.largest.1, mib(self.largest.0))
    }
}

/// What the app does for one video, planned without computing anything: `count` frames of
/// `height` x `width` px encoded stage by stage (ViT, VGGT, connector) into a session sized for
/// `max_new` reply tokens, then one question of the benchmarks' synthetic prompt answered with
/// `new_tokens` greedy tokens.
pub fn plan_video_question(
    gpu: &Gpu,
    m: &SpatialMllm,
    count: usize,
    height: usize,
    width: usize,
    max_new: usize,
    new_tokens: usize,
) -> Result<QuestionPlan, String> {
    let c = &m.cfg.vision;
    let grid_thw = [count / c.temporal_patch, height / c.patch, width / c.patch];
    let vit = VitInput { pixel_values: vec![0.5; grid_thw.iter().product::<usize>() * VisionModel::patch_dim(c)], grid_thw };
    let px = frames(count, height, width);
    let f = Frames { pixels: &px, count, height, width };
    gpu.set_dry_run(true);
    gpu.clear_pool();
    gpu.stats.reset_largest();
    let mut stages = Vec::new();
    let mut current = "input";
    let end_stage =
        |stages: &mut Vec<StagePeak>, stage: &'static str| stages.push(StagePeak { stage, peak: gpu.stats.take_window_peak(), after: gpu.stats.held_bytes() });
    let run = pollster::block_on(async {
        let mut on_stage = |next: &str| {
            end_stage(&mut stages, current);
            current = match next {
                "ViT" => "ViT",
                "VGGT" => "VGGT",
                _ => "connector + KV cache",
            };
        };
        let mut opened = open_session(gpu, m, Visual::Video { vit: &vit, vggt: f }, max_new, Some(&mut on_stage)).await?;
        end_stage(&mut stages, current);
        let prompt = opened.session.synthetic_prompt(m)?;
        opened.session.ask_prompt(gpu, m, prompt, &GenerationConfig::greedy(new_tokens, vec![]), &mut |_| true).await?;
        end_stage(&mut stages, "prefill + decode");
        Ok::<_, crate::model::ModelError>(())
    });
    gpu.set_dry_run(false);
    run.map_err(err)?;
    stages.retain(|s| s.stage != "input"); // before the first stage: nothing allocated
    Ok(QuestionPlan { stages, peak: gpu.stats.activation_bytes(), largest: gpu.stats.largest_alloc() })
}
