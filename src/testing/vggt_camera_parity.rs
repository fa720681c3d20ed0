//! VGGT's camera head against the upstream code on the tiny fixture (`tests/fixtures/vggt`),
//! shared by the native test (`tests/vggt_camera.rs`) and the browser harness. The head gets the
//! reference's last aggregator output (frame.L ‖ global.L, as the two halves), so it is checked
//! on its own; its
//! pose encoding must match the reference's, also with the frames given twice (attention across
//! frames has no positions, so duplicated frames change nothing: this runs the many-row kernels),
//! and the cameras converted from both encodings must agree.

use std::fmt::Display;

use super::reference_file::ReferenceFile;
use super::util::{compare, CaseOutcome};
use crate::gpu::{DType, Gpu, Recorder};
use crate::model::vggt::camera::{CameraConfig, CameraHead, POSE_DIM};
use crate::model::vggt::pose::pose_encoding_to_extri_intri;
use crate::model::vggt::LayerOutput;
use crate::model::Params;
use crate::weights::layout::ModelKind;
use crate::weights::shapes::VggtDims;

/// Relative error allowed on the f32 path.
pub const F32_TOL: f64 = 1e-3;
/// On the f16 activation path.
pub const F16_TOL: f64 = 1e-2;

fn err(e: impl Display) -> String {
    e.to_string()
}

/// The aggregator's output `layer` as the heads take it: its halves (the frame-block and the
/// global-block features of each token) and their shape [frames, tokens, dim].
pub fn aggregator_output(reference: &ReferenceFile, layer: usize) -> Result<([Vec<f32>; 2], [usize; 3]), String> {
    let (fname, gname) = (format!("frame.{layer}"), format!("global.{layer}"));
    let fs = reference.shape(&fname)?;
    let &[frames, tokens, dim] = &fs[..] else {
        return Err(format!("{fname} has shape {fs:?}, expected [frames, tokens, dim]"));
    };
    let gs = reference.shape(&gname)?;
    if gs.iter().product::<usize>() != frames * tokens * dim || gs.last() != Some(&dim) {
        return Err(format!("{gname} has shape {gs:?}, expected [1, {}, {dim}]", frames * tokens));
    }
    Ok(([reference.f32s(&fname)?, reference.f32s(&gname)?], [frames, tokens, dim]))
}

/// Run the head on the halves `tokens` of shape [frames, per frame, width] and read the pose
/// encoding back.
pub async fn run_head(gpu: &Gpu, head: &CameraHead, tokens: &[Vec<f32>; 2], shape: [usize; 3]) -> Result<Vec<f32>, String> {
    let up = |v: &[f32]| gpu.upload_act(v, &shape).map_err(err);
    let t = LayerOutput { frame: up(&tokens[0])?, global: up(&tokens[1])? };
    let mut rec = Recorder::new(gpu);
    let pose = head.forward(&mut rec, &t).map_err(err)?;
    rec.submit().map_err(err)?;
    gpu.read_f32(&pose).await.map_err(err)
}

/// The camera head on the reference's last aggregator output, against the reference pose_enc.
pub async fn check_camera_head(gpu: &Gpu, reference: &ReferenceFile, params: &Params, cfg: &serde_json::Value) -> CaseOutcome {
    let dims = VggtDims::from_config(ModelKind::Vggt, cfg);
    let head = CameraHead::new(&CameraConfig::from_dims(&dims), params).map_err(err)?;
    let tol = if gpu.act == DType::F16 { F16_TOL } else { F32_TOL };
    let (tokens, shape) = aggregator_output(reference, dims.depth - 1)?;
    let frames = shape[0];
    let want = reference.f64s("pose_enc")?;
    if want.len() != frames * POSE_DIM {
        return Err(format!("the reference pose_enc has {} values for {frames} frames", want.len()));
    }
    let mut notes = Vec::new();

    let got = run_head(gpu, &head, &tokens, shape).await?;
    notes.push(compare(&format!("pose_enc of {frames} frames"), &got, &want, tol)?);

    // Every frame twice: more rows than the GEMV and single-query attention paths take.
    let twice = tokens.clone().map(|h| h.iter().chain(&h).copied().collect::<Vec<f32>>());
    let got2 = run_head(gpu, &head, &twice, [2 * frames, shape[1], shape[2]]).await?;
    let want2: Vec<f64> = want.iter().chain(&want).copied().collect();
    notes.push(compare(&format!("pose_enc of {} frames (each twice)", 2 * frames), &got2, &want2, tol)?);

    // Cameras: the engine's encoding against the reference's, through the same conversion.
    let img = reference.shape("images")?;
    let (h, w) = (img[img.len() - 2], img[img.len() - 1]);
    let want_f32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    let cams = pose_encoding_to_extri_intri(&got, h, w).map_err(err)?;
    let want_cams = pose_encoding_to_extri_intri(&want_f32, h, w).map_err(err)?;
    let flat = |cs: &[crate::model::vggt::Camera], intr: bool| -> Vec<f64> {
        cs.iter()
            .flat_map(|c| if intr { c.intrinsic.iter().flatten().copied().collect::<Vec<_>>() } else { c.extrinsic.iter().flatten().copied().collect() })
            .collect()
    };
    notes.push(compare_cameras("extrinsics", &flat(&cams, false), &flat(&want_cams, false), tol)?);
    notes.push(compare_cameras(&format!("intrinsics ({h}x{w})"), &flat(&cams, true), &flat(&want_cams, true), tol)?);
    Ok(notes.join("; "))
}

/// Compare camera entries; a field of view of 0 (ReLU's floor) gives an infinite focal length,
/// which must then be infinite on both sides; the finite entries are compared as usual.
fn compare_cameras(what: &str, got: &[f64], want: &[f64], tol: f64) -> CaseOutcome {
    let (mut g, mut w, mut inf) = (Vec::new(), Vec::new(), 0);
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        if b.is_finite() {
            g.push(a as f32);
            w.push(b);
        } else if a == b {
            inf += 1;
        } else {
            return Err(format!("{what}: entry {i} is {a}, expected {b}"));
        }
    }
    Ok(format!("{} ({inf} infinite focal lengths on both sides)", compare(what, &g, &w, tol)?))
}
