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

use crate::gpu::{Recorder, Tensor};
use crate::kernels::attention::{attention, Attention, HeadsView};
use crate::kernels::elementwise::{layer_scale_add, modulate, relu_columns};
use crate::kernels::embed::embed;
use crate::kernels::gather::gather_rows_into;
use crate::kernels::matmul::{linear, Activation, Epilogue};
use crate::kernels::norm::layer_norm;
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

struct Linear {
    w: Weight,
    b: Tensor,
}

impl Linear {
    fn load(p: &Params, name: &str, rows: usize, cols: usize) -> MResult<Linear> {
        Ok(Linear { w: p.matrix(&format!("{name}.weight"), rows, cols)?, b: p.vector(&format!("{name}.bias"), rows)? })
    }
    fn epi(&self) -> Epilogue<'_> {
        Epilogue::bias(Some(&self.b))
    }
}

struct Norm {
    w: Tensor,
    b: Tensor,
}

impl Norm {
    fn load(p: &Params, name: &str, dim: usize) -> MResult<Norm> {
        Ok(Norm { w: p.vector(&format!("{name}.weight"), dim)?, b: p.vector(&format!("{name}.bias"), dim)? })
    }
    fn apply(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        Ok(layer_norm(rec, x, Some(&self.w), Some(&self.b), EPS)?)
    }
}

/// A trunk block: x += ls1 * proj(Attn(norm1(x))); x += ls2 * fc2(GELU(fc1(norm2(x)))), with full
/// attention over the frames' tokens (no RoPE, no q/k norm).
struct Block {
    norm1: Norm,
    qkv: Linear,
    proj: Linear,
    ls1: Tensor,
    norm2: Norm,
    fc1: Linear,
    fc2: Linear,
    ls2: Tensor,
}

impl Block {
    fn load(p: &Params, pre: &str, c: &CameraConfig) -> MResult<Block> {
        let (d, n) = (c.dim, |s: &str| format!("{pre}{s}"));
        Ok(Block {
            norm1: Norm::load(p, &n("norm1"), d)?,
            qkv: Linear::load(p, &n("attn.qkv"), 3 * d, d)?,
            proj: Linear::load(p, &n("attn.proj"), d, d)?,
            ls1: p.vector(&n("ls1.gamma"), d)?,
            norm2: Norm::load(p, &n("norm2"), d)?,
            fc1: Linear::load(p, &n("mlp.fc1"), c.mlp, d)?,
            fc2: Linear::load(p, &n("mlp.fc2"), d, c.mlp)?,
            ls2: p.vector(&n("ls2.gamma"), d)?,
        })
    }

    fn forward(&self, rec: &mut Recorder, x: &Tensor, heads: usize) -> MResult<Tensor> {
        let (n, d) = (x.rows(), x.cols());
        let hd = d / heads;
        let y = self.norm1.apply(rec, x)?;
        let qkv = linear(rec, &y, &self.qkv.w, self.qkv.epi())?;
        let view = |off| HeadsView { t: &qkv, tokens: n, heads, stride: 3 * d, off };
        let o = attention(
            rec,
            &Attention { q: view(0), k: view(d), v: view(2 * d), head_dim: hd, causal: false, q_pos0: 0, segments: None, scale: 1.0 / (hd as f32).sqrt() },
        )?;
        let a = linear(rec, &o, &self.proj.w, self.proj.epi())?;
        let x = layer_scale_add(rec, x, &a, &self.ls1)?;
        let y = self.norm2.apply(rec, &x)?;
        let h = linear(rec, &y, &self.fc1.w, self.fc1.epi().with_act(Activation::Gelu))?;
        let f = linear(rec, &h, &self.fc2.w, self.fc2.epi())?;
        Ok(layer_scale_add(rec, &x, &f, &self.ls2)?)
    }
}

pub struct CameraHead {
    pub cfg: CameraConfig,
    token_norm: Norm,
    trunk: Vec<Block>,
    trunk_norm: Norm,
    /// [1, 9], broadcast to every frame with an embedding lookup of row 0.
    empty_pose: Weight,
    embed_pose: Linear,
    modulation: Linear,
    branch_fc1: Linear,
    branch_fc2: Linear,
}

impl CameraHead {
    pub fn new(cfg: &CameraConfig, p: &Params) -> MResult<CameraHead> {
        let d = cfg.dim;
        if cfg.heads == 0 || d % cfg.heads != 0 || (d / cfg.heads) % 4 != 0 {
            return Err(ModelError::Config(format!("camera head: width {d} is not {} heads of a multiple of 4 dims", cfg.heads)));
        }
        let c = "vggt.camera_head.";
        let trunk = (0..cfg.depth).map(|b| Block::load(p, &format!("{c}trunk.{b}."), cfg)).collect::<MResult<_>>()?;
        Ok(CameraHead {
            cfg: cfg.clone(),
            token_norm: Norm::load(p, &format!("{c}token_norm"), d)?,
            trunk,
            trunk_norm: Norm::load(p, &format!("{c}trunk_norm"), d)?,
            empty_pose: p.matrix(&format!("{c}empty_pose_tokens"), 1, POSE_DIM)?,
            embed_pose: Linear::load(p, &format!("{c}embed_pose"), d, POSE_DIM)?,
            modulation: Linear::load(p, &format!("{c}poseLN_modulation.1"), 3 * d, d)?,
            branch_fc1: Linear::load(p, &format!("{c}pose_branch.fc1"), d / 2, d)?,
            branch_fc2: Linear::load(p, &format!("{c}pose_branch.fc2"), POSE_DIM, d / 2)?,
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
        let cam = self.token_norm.apply(rec, &cam)?;
        let cam_adaln = layer_norm(rec, &cam, None, None, ADALN_EPS)?;

        let zeros = gpu.upload_u32(&vec![0; frames], &[frames])?;
        let mut pose = embed(rec, &zeros, &self.empty_pose)?;
        let mut out = Vec::with_capacity(iterations);
        for it in 0..iterations {
            let e = linear(rec, &pose, &self.embed_pose.w, self.embed_pose.epi().with_act(Activation::Silu))?;
            let mods = linear(rec, &e, &self.modulation.w, self.modulation.epi())?;
            let mut x = modulate(rec, &cam_adaln, &mods, &cam)?;
            for b in &self.trunk {
                x = b.forward(rec, &x, self.cfg.heads)?;
            }
            let x = self.trunk_norm.apply(rec, &x)?;
            let h = linear(rec, &x, &self.branch_fc1.w, self.branch_fc1.epi().with_act(Activation::Gelu))?;
            let epi = if it == 0 { self.branch_fc2.epi() } else { self.branch_fc2.epi().with_add(&pose) };
            pose = linear(rec, &h, &self.branch_fc2.w, epi)?;
            out.push(activate_pose(rec, &pose)?);
        }
        Ok(out)
    }
}

/// `activate_pose` with VGGT's activations: translation and quaternion linear, FoV ReLU.
fn activate_pose(rec: &mut Recorder, pose: &Tensor) -> MResult<Tensor> {
    Ok(relu_columns(rec, pose, 7..POSE_DIM)?)
}
