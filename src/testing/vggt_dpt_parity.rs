//! VGGT's DPT depth and point heads against the upstream code on the tiny fixture
//! (`tests/fixtures/vggt`), shared by the native test (`tests/vggt_heads.rs`) and, later, the
//! browser harness. The heads are fed the reference aggregator outputs (layer i = frame.i ‖
//! global.i along channels, given as the two halves), so that they are checked on their own; their outputs are compared
//! with upstream's `depth`, `depth_conf`, `world_points`, `world_points_conf`.

use super::reference_file::ReferenceFile;
use super::util::{compare, CaseOutcome};
use crate::gpu::{DType, Gpu};
use crate::model::vggt::dpt::{DptHead, DptInput, DEPTH_HEAD, POINT_HEAD};
use crate::model::vggt::LayerOutput;
use crate::model::Params;
use crate::weights::layout::ModelKind;
use crate::weights::shapes::VggtDims;

/// Relative error allowed on the f32 path.
pub const F32_TOL: f64 = 1e-3;
/// Relative error allowed on the f16 activation path.
pub const F16_TOL: f64 = 1e-2;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The tolerance of this device's activation path.
pub fn tolerance(gpu: &Gpu) -> f64 {
    if gpu.act == DType::F16 {
        F16_TOL
    } else {
        F32_TOL
    }
}

/// The fixture's images (frames and their size) and the aggregator outputs the heads read,
/// uploaded: layer i = frame.i [S, T, D] ‖ global.i [1, S*T, D] seen as [S, T, D], as halves.
pub struct HeadInputs {
    pub layers: Vec<LayerOutput>,
    pub frame_sizes: Vec<(usize, usize)>,
    pub patch_start: usize,
    pub dims: VggtDims,
}

impl HeadInputs {
    pub fn new(gpu: &Gpu, reference: &ReferenceFile, config: &serde_json::Value) -> Result<HeadInputs, String> {
        let dims = VggtDims::from_config(ModelKind::Vggt, config);
        let img = reference.shape("images")?;
        let [frames, 3, h, w] = img[..] else { return Err(format!("images has shape {img:?}, expected [S, 3, H, W]")) };
        let mut layers = Vec::new();
        for l in dims.dpt_layers {
            let fs = reference.shape(&format!("frame.{l}"))?;
            let [s, t, d] = fs[..] else { return Err(format!("frame.{l} has shape {fs:?}")) };
            if s != frames || d != dims.dim {
                return Err(format!("frame.{l} has shape {fs:?}, expected [{frames}, tokens, {}]", dims.dim));
            }
            let fr = reference.f32s(&format!("frame.{l}"))?;
            let gl = reference.f32s(&format!("global.{l}"))?;
            if gl.len() != fr.len() {
                return Err(format!("global.{l} does not hold {frames} frames of {t} tokens"));
            }
            let up = |v: &[f32]| gpu.upload_act(v, &[s, t, d]).map_err(err);
            layers.push(LayerOutput { frame: up(&fr)?, global: up(&gl)? });
        }
        Ok(HeadInputs { layers, frame_sizes: vec![(h, w); frames], patch_start: 1 + dims.registers, dims })
    }

    pub fn input(&self) -> DptInput<'_> {
        DptInput { layers: [&self.layers[0], &self.layers[1], &self.layers[2], &self.layers[3]], frame_sizes: &self.frame_sizes, patch_start: self.patch_start }
    }
}

/// Run one head (`DEPTH_HEAD` or `POINT_HEAD`) with all frames in one chunk and in chunks of
/// `chunk` frames, and compare both with the reference.
pub async fn check_head(gpu: &Gpu, reference: &ReferenceFile, params: &Params, config: &serde_json::Value, prefix: &str, chunk: usize) -> CaseOutcome {
    let inputs = HeadInputs::new(gpu, reference, config)?;
    let mut head = DptHead::new(gpu, params, prefix, &inputs.dims).map_err(err)?;
    let (values_name, conf_name) = if prefix == DEPTH_HEAD { ("depth", "depth_conf") } else { ("world_points", "world_points_conf") };
    let want_v = reference.f64s(values_name)?;
    let want_c = reference.f64s(conf_name)?;
    let mut notes = Vec::new();
    for frames_chunk in [usize::MAX, chunk] {
        head.frames_chunk = frames_chunk;
        let out = head.forward(gpu, &inputs.input()).map_err(err)?;
        let shape = reference.shape(values_name)?;
        if out.values.shape != shape {
            return Err(format!("{values_name}: shape {:?}, the reference {shape:?}", out.values.shape));
        }
        let got_v = gpu.read_f32(&out.values).await.map_err(err)?;
        let got_c = gpu.read_f32(&out.conf).await.map_err(err)?;
        let tol = tolerance(gpu);
        let tag = if frames_chunk == usize::MAX { "one chunk".to_string() } else { format!("chunks of {frames_chunk}") };
        notes.push(compare(&format!("{values_name} ({tag})"), &got_v, &want_v, tol)?);
        notes.push(compare(&format!("{conf_name} ({tag})"), &got_c, &want_c, tol)?);
    }
    Ok(notes.join("; "))
}

pub async fn check_depth_head(gpu: &Gpu, reference: &ReferenceFile, params: &Params, config: &serde_json::Value) -> CaseOutcome {
    check_head(gpu, reference, params, config, DEPTH_HEAD, 2).await
}

pub async fn check_point_head(gpu: &Gpu, reference: &ReferenceFile, params: &Params, config: &serde_json::Value) -> CaseOutcome {
    check_head(gpu, reference, params, config, POINT_HEAD, 2).await
}
