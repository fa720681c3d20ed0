//! VGGT against the upstream code on the tiny fixture (`tests/fixtures/vggt`), shared by the native
//! tests (`tests/vggt.rs`) and the browser harness: every DINO block, DINO's normed patch tokens,
//! every frame and global block of the aggregator, and the layer outputs (their two halves).

use super::reference_file::ReferenceFile;
use super::util::{compare, CaseOutcome};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::vggt::{Aggregator, AggregatorTaps, CameraConfig, CameraHead, Frames};
use crate::model::Params;

/// Relative error allowed on the f32 path (the bar).
pub const F32_TOL: f64 = 1e-3;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn read(gpu: &Gpu, t: &Tensor) -> Result<Vec<f32>, String> {
    gpu.read_f32(t).await.map_err(err)
}

/// The reference frames [S, 3, H, W] in [0, 1].
pub fn frames(r: &ReferenceFile) -> Result<(Vec<f32>, [usize; 4]), String> {
    let shape = r.shape("images")?;
    let [s, c, h, w] = shape[..] else { return Err(format!("images of shape {shape:?}")) };
    Ok((r.f32s("images")?, [s, c, h, w]))
}

/// Every check, in the order the harnesses run them.
pub const CHECKS: &[&str] = &["aggregator", "aggregator chunked mlp", "camera head", "frames to cameras"];

/// The models under test: the aggregator and the package it came from (the heads load from it).
pub struct VggtUnderTest<'a> {
    pub agg: Aggregator,
    pub params: &'a Params,
    pub config: &'a serde_json::Value,
}

/// Run one check of `CHECKS` by name (f32 path tolerance).
pub async fn run_check(gpu: &Gpu, r: &ReferenceFile, m: &mut VggtUnderTest<'_>, name: &str) -> CaseOutcome {
    let agg = &mut m.agg;
    match name {
        "aggregator" => check_aggregator(gpu, r, agg, F32_TOL).await,
        "camera head" => super::vggt_camera_parity::check_camera_head(gpu, r, m.params, m.config).await,
        "frames to cameras" => check_frames_to_cameras(gpu, r, m).await,
        "aggregator chunked mlp" => {
            // Token chunks that split frames unevenly, as large inputs run the MLPs.
            let chunk = std::mem::replace(&mut agg.mlp_chunk, 7);
            let out = check_aggregator(gpu, r, agg, F32_TOL).await;
            agg.mlp_chunk = chunk;
            out
        }
        other => Err(format!("no check named {other:?}")),
    }
}

/// From the raw frames: our aggregator's last layer into the camera head, against upstream's pose_enc.
pub async fn check_frames_to_cameras(gpu: &Gpu, r: &ReferenceFile, m: &VggtUnderTest<'_>) -> CaseOutcome {
    let (px, [s, _, h, w]) = frames(r)?;
    let last = m.agg.dims.depth - 1;
    let head = CameraHead::new(&CameraConfig::from_dims(&m.agg.dims), m.params).map_err(err)?;
    let mut rec = Recorder::new(gpu);
    let out = m.agg.forward(&mut rec, &Frames { pixels: &px, count: s, height: h, width: w }, &[last], None).map_err(err)?;
    let tokens = out.layers[0].1.reshape(&[s, out.tokens, m.agg.dims.dim]);
    let pose = head.forward(&mut rec, &tokens).map_err(err)?;
    rec.submit().map_err(err)?;
    let tol = if gpu.act == crate::gpu::DType::F16 { 1e-2 } else { F32_TOL };
    compare("pose_enc from the frames", &read(gpu, &pose).await?, &r.f64s("pose_enc")?, tol)
}

/// The aggregator block by block, at `tol` (1e-3 on the f32 path).
pub async fn check_aggregator(gpu: &Gpu, r: &ReferenceFile, agg: &Aggregator, tol: f64) -> CaseOutcome {
    let (px, [s, _, h, w]) = frames(r)?;
    let depth = agg.dims.depth;
    let keep: Vec<usize> = (0..depth).collect();
    let mut rec = Recorder::new(gpu);
    let mut taps = AggregatorTaps::default();
    let out = agg.forward(&mut rec, &Frames { pixels: &px, count: s, height: h, width: w }, &keep, Some(&mut taps)).map_err(err)?;
    rec.submit().map_err(err)?;
    let mut report = Vec::new();
    for (i, t) in taps.dino_blocks.iter().enumerate() {
        report.push(compare(&format!("dino block {i}"), &read(gpu, t).await?, &r.f64s(&format!("dino.block.{i}"))?, tol)?);
    }
    // DINO's output as upstream returns it: the normed patch tokens only.
    let dino = read(gpu, taps.dino_out.as_ref().ok_or("DINO's output was not tapped")?).await?;
    let d = agg.dims.dim;
    let patches: Vec<f32> = dino.chunks(out.tokens * d).flat_map(|f| f[out.patch_start * d..].to_vec()).collect();
    report.push(compare("dino out", &patches, &r.f64s("dino.out")?, tol)?);
    for i in 0..depth {
        let fr = read(gpu, &taps.frame_blocks[i]).await?;
        let gl = read(gpu, &taps.global_blocks[i]).await?;
        report.push(compare(&format!("frame {i}"), &fr, &r.f64s(&format!("frame.{i}"))?, tol)?);
        report.push(compare(&format!("global {i}"), &gl, &r.f64s(&format!("global.{i}"))?, tol)?);
        // The layer output is upstream's frame ‖ global, kept as the two halves.
        let (_, layer) = out.layers.iter().find(|(l, _)| *l == i).ok_or(format!("layer {i} was not kept"))?;
        let exact = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        compare(&format!("layer {i} frame half"), &read(gpu, &layer.frame).await?, &exact(&fr), 0.0)?;
        compare(&format!("layer {i} global half"), &read(gpu, &layer.global).await?, &exact(&gl), 0.0)?;
    }
    Ok(report.join("; "))
}
