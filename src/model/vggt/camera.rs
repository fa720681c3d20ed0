//! VGGT's camera head (spec 7.2; upstream `heads/camera_head.py`): the camera token (token 0) of
//! every frame of the aggregator's last output (frame ‖ global features, gathered from the two
//! halves the aggregator keeps), `token_norm`, then 4 refinement iterations, each
//!   m = Linear(SiLU(embed_pose(p)))                 shift | scale | gate, p the encoding so far
//!   x = tokens + gate * (LN(tokens) * (1 + scale) + shift)       LN without affine, eps 1e-6
//!   x = trunk(x)                                     pre-norm blocks, attention across frames
//!   p = p + fc2(GELU(fc1(trunk_norm(x))))            (the first iteration: p = the delta)
//! with p = the learned empty pose before the first iteration. The output is the activated
//! encoding of the last iteration, [frames, 9] = [T (3), quaternion xyzw (4), fov_h, fov_w]:
//! translation and quaternion linear, field of view ReLU (`activate_pose`, upstream defaults).

use super::block::{Block, BlockConfig};
use crate::gpu::{Recorder, Tensor};
use crate::kernels::elementwise::{modulate, relu_columns};
use crate::kernels::embed::embed;
use crate::kernels::gather::gather_rows_into;
use crate::kernels::matmul::Activation;
use crate::kernels::norm::layer_norm;
use crate::model::layers::{LayerNorm, Linear, Mlp};
use crate::model::vggt::LayerOutput;
use crate::model::{MResult, ModelError, Params};
use crate::weights::layout::ModelKind;
use crate::weights::shapes::VggtDims;
use crate::weights::Weight;

/// Size of the pose encoding ("absT_quaR_FoV").
pub const POSE_DIM: usize = 9;
/// Refinement iterations VGGT runs (`CameraHead.forward`'s default).
pub const ITERATIONS: usize = 4;
/// nn.LayerNorm's default (token_norm, trunk_norm, the trunk blocks' norms).
const EPS: f32 = 1e-5;
/// The adaLN norm's.
const ADALN_EPS: f32 = 1e-6;

/// The head's sizes: width `dim` (2x the aggregator's), `depth` trunk blocks of `heads` heads
/// with an MLP of `mlp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraConfig {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp: usize,
}

impl CameraConfig {
    pub fn from_dims(d: &VggtDims) -> CameraConfig {
        CameraConfig { dim: 2 * d.dim, depth: d.camera_depth, heads: d.camera_heads, mlp: d.camera_mlp }
    }

    /// From a package's config (see `VggtDims::from_config`).
    pub fn from_config(kind: ModelKind, cfg: &serde_json::Value) -> CameraConfig {
        Self::from_dims(&VggtDims::from_config(kind, cfg))
    }
}

pub struct CameraHead {
    pub cfg: CameraConfig,
    token_norm: LayerNorm,
    /// Pre-norm blocks (the aggregator's, without q/k norm or RoPE), attention across frames.
    trunk: Vec<Block>,
    trunk_norm: LayerNorm,
    /// [1, 9], broadcast to every frame with an embedding lookup of row 0.
    empty_pose: Weight,
    embed_pose: Linear,
    /// `poseLN_modulation`: SiLU then this Linear to shift | scale | gate.
    modulation: Linear,
    pose_branch: Mlp,
}

impl CameraHead {
    pub fn new(cfg: &CameraConfig, p: &Params) -> MResult<CameraHead> {
        let d = cfg.dim;
        if cfg.heads == 0 || d % cfg.heads != 0 || (d / cfg.heads) % 4 != 0 {
            return Err(ModelError::Config(format!("camera head: width {d} is not {} heads of a multiple of 4 dims", cfg.heads)));
        }
        let c = p.pp("vggt.camera_head");
        let block = BlockConfig { dim: d, heads: cfg.heads, mlp: cfg.mlp, eps: EPS, qk_norm: false };
        Ok(CameraHead {
            cfg: cfg.clone(),
            token_norm: LayerNorm::load(&c.pp("token_norm"), d, EPS)?,
            trunk: (0..cfg.depth).map(|b| Block::load(&c.pp("trunk").pp(b), &block, None)).collect::<MResult<_>>()?,
            trunk_norm: LayerNorm::load(&c.pp("trunk_norm"), d, EPS)?,
            empty_pose: c.matrix("empty_pose_tokens", 1, POSE_DIM)?,
            embed_pose: Linear::load(&c.pp("embed_pose"), d, POSE_DIM)?,
            modulation: Linear::load(&c.pp("poseLN_modulation.1"), 3 * d, d)?,
            pose_branch: Mlp::load(&c.pp("pose_branch"), ["fc1", "fc2"], d, d / 2, POSE_DIM)?,
        })
    }

    /// The pose encoding [frames, 9] of the last of `ITERATIONS` refinements, from the
    /// aggregator's last output `tokens`: its halves [frames, tokens per frame, embed_dim] are the
    /// frame-block and the global-block outputs (the head's input is the two side by side).
    pub fn forward(&self, rec: &mut Recorder, tokens: &LayerOutput) -> MResult<Tensor> {
        Ok(self.forward_iterations(rec, tokens, ITERATIONS)?.pop().expect("at least one iteration"))
    }

    /// The activated encoding after each of `iterations` refinements (upstream's pose_enc_list).
    pub fn forward_iterations(&self, rec: &mut Recorder, tokens: &LayerOutput, iterations: usize) -> MResult<Vec<Tensor>> {
        let d = self.cfg.dim;
        let [frames, per_frame, width] = tokens.frame.shape[..] else {
            return Err(ModelError::Input(format!("camera head: tokens of shape {:?}, expected [frames, tokens per frame, {}]", tokens.frame.shape, d / 2)));
        };
        if 2 * width != d || tokens.global.shape != tokens.frame.shape {
            return Err(ModelError::Input(format!(
                "camera head: the frame and global outputs are {width} wide (shapes {:?} and {:?}); the head takes {} of each (side by side, {d})",
                tokens.frame.shape,
                tokens.global.shape,
                d / 2
            )));
        }
        if frames == 0 || per_frame == 0 {
            return Err(ModelError::Input(format!("camera head: no tokens ({frames} frames of {per_frame} tokens)")));
        }
        if iterations == 0 {
            return Err(ModelError::Input("camera head: zero refinement iterations".into()));
        }
        let gpu = rec.gpu;
        // The camera token of each frame, normalised; its adaLN form is the same every iteration.
        let firsts: Vec<u32> = (0..frames).map(|f| (f * per_frame) as u32).collect();
        let firsts = gpu.upload_u32(&firsts, &[frames])?;
        let cam = gpu.alloc_act(&[frames, d])?;
        for (half, t) in tokens.halves().into_iter().enumerate() {
            gather_rows_into(rec, &t.reshape(&[frames * per_frame, width]), &firsts, &cam, half * width)?;
        }
        let cam = self.token_norm.forward(rec, &cam)?;
        let cam_adaln = layer_norm(rec, &cam, None, None, ADALN_EPS)?;

        let zeros = gpu.upload_u32(&vec![0; frames], &[frames])?;
        let mut pose = embed(rec, &zeros, &self.empty_pose)?;
        let mut out = Vec::with_capacity(iterations);
        for it in 0..iterations {
            let e = self.embed_pose.forward_act(rec, &pose, Activation::Silu)?;
            let mods = self.modulation.forward(rec, &e)?;
            let mut x = modulate(rec, &cam_adaln, &mods, &cam)?;
            for b in &self.trunk {
                x = b.forward(rec, &x, None, None, usize::MAX)?;
            }
            let x = self.trunk_norm.forward(rec, &x)?;
            pose = if it == 0 { self.pose_branch.forward(rec, &x)? } else { self.pose_branch.forward_add(rec, &x, &pose)? };
            out.push(activate_pose(rec, &pose)?);
        }
        Ok(out)
    }
}

/// `activate_pose` with VGGT's activations: translation and quaternion linear, FoV ReLU.
fn activate_pose(rec: &mut Recorder, pose: &Tensor) -> MResult<Tensor> {
    Ok(relu_columns(rec, pose, 7..POSE_DIM)?)
}
