//! The pre-norm ViT block of DINOv2 and VGGT (upstream `layers/block.py`), shared by the
//! aggregator's DINO, frame and global blocks and the camera head's trunk:
//!   x = x + ls1 · proj(Attn(norm1 x))          optional per-head q/k LayerNorm and 2D RoPE
//!   x = x + ls2 · fc2(GELU(fc1(norm2 x)))      in token chunks (bounded hidden activations)

use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::attention::{attention, Attention, HeadsView};
use crate::kernels::norm::Rows;
use crate::kernels::rope::{rope_inplace, RopeTable};
use crate::model::layers::{chunk, LayerNorm, LayerScale, Linear, Mlp};
use crate::model::{MResult, Scope};

/// The q/k LayerNorms' eps (PyTorch's default), whatever the block's own.
const QK_NORM_EPS: f32 = 1e-5;

/// A block's sizes and variants.
#[derive(Clone, Copy, Debug)]
pub struct BlockConfig {
    pub dim: usize,
    pub heads: usize,
    pub mlp: usize,
    /// The norms' eps (DINOv2 1e-6, the aggregator and camera blocks 1e-5).
    pub eps: f32,
    /// Per-head LayerNorms of q and k (`attn.q_norm`, `attn.k_norm`).
    pub qk_norm: bool,
}

enum Qkv {
    Fused(Linear),
    Split([Linear; 3]),
}

/// Multi-head self-attention (`attn`): qkv, optional q/k norm, optional RoPE, proj.
struct SelfAttention {
    qkv: Qkv,
    qk_norm: Option<[LayerNorm; 2]>,
    proj: Linear,
    heads: usize,
}

impl SelfAttention {
    fn load(p: &Scope, c: &BlockConfig, split_qkv: Option<&Gpu>) -> MResult<SelfAttention> {
        let d = c.dim;
        let qkv = Linear::load(&p.pp("qkv"), 3 * d, d)?;
        let qkv = match split_qkv {
            Some(gpu) => {
                let [q, k, v] = [0, 1, 2].map(|i| qkv.slice_rows(gpu, i * d, (i + 1) * d));
                Qkv::Split([q?, k?, v?])
            }
            None => Qkv::Fused(qkv),
        };
        let qk_norm = match c.qk_norm {
            true => Some([LayerNorm::load(&p.pp("q_norm"), d / c.heads, QK_NORM_EPS)?, LayerNorm::load(&p.pp("k_norm"), d / c.heads, QK_NORM_EPS)?]),
            false => None,
        };
        Ok(SelfAttention { qkv, qk_norm, proj: Linear::load(&p.pp("proj"), d, d)?, heads: c.heads })
    }

    /// proj(Attn(y)); `segments` splits the tokens into groups attending within themselves
    /// (frames), `rope` positions are [tokens, 2] (y, x). Taking `y` lets it go as soon as q, k
    /// and v are recorded.
    fn forward(&self, rec: &mut Recorder, y: Tensor, segments: Option<&Tensor>, rope: Option<(&Tensor, &RopeTable)>) -> MResult<Tensor> {
        let (n, d, heads) = (y.rows(), y.cols(), self.heads);
        let hd = d / heads;
        // q, k, v as (tensor, token stride, offset).
        let [q, k, v] = match &self.qkv {
            Qkv::Fused(l) => {
                let t = l.forward(rec, &y)?;
                [(t.clone(), 3 * d, 0), (t.clone(), 3 * d, d), (t, 3 * d, 2 * d)]
            }
            Qkv::Split([lq, lk, lv]) => [(lq.forward(rec, &y)?, d, 0), (lk.forward(rec, &y)?, d, 0), (lv.forward(rec, &y)?, d, 0)],
        };
        // Submitted now, y's buffer takes the attention's output instead of a new one (each
        // [tokens, dim] buffer is 50 MiB at 25 000 tokens).
        drop(y);
        rec.flush()?;
        if let Some([qn, kn]) = &self.qk_norm {
            qn.forward_rows_inplace(rec, &q.0, Rows { dim: hd, heads, token_stride: q.1, off: q.2 })?;
            kn.forward_rows_inplace(rec, &k.0, Rows { dim: hd, heads, token_stride: k.1, off: k.2 })?;
        }
        if let Some((pos, table)) = rope {
            rope_inplace(rec, &q.0, heads, q.1, q.2, pos, table)?;
            rope_inplace(rec, &k.0, heads, k.1, k.2, pos, table)?;
        }
        fn view((t, stride, off): &(Tensor, usize, usize), tokens: usize, heads: usize) -> HeadsView<'_> {
            HeadsView { t, tokens, heads, stride: *stride, off: *off }
        }
        let o = attention(
            rec,
            &Attention {
                q: view(&q, n, heads),
                k: view(&k, n, heads),
                v: view(&v, n, heads),
                head_dim: hd,
                causal: false,
                q_pos0: 0,
                segments,
                scale: 1.0 / (hd as f32).sqrt(),
            },
        )?;
        // Likewise q, k and v's buffers take proj's output and the MLP's temporaries.
        drop((q, k, v));
        rec.flush()?;
        self.proj.forward(rec, &o)
    }
}

/// One block (`…blocks.N`, `camera_head.trunk.N`).
pub struct Block {
    norm1: LayerNorm,
    attn: SelfAttention,
    ls1: LayerScale,
    norm2: LayerNorm,
    mlp: Mlp,
    ls2: LayerScale,
}

impl Block {
    /// The block under `p`. With `split_qkv`, the checkpoint's fused qkv is split into q, k and v
    /// at load time on that GPU, so that no activation is 3·dim wide (at 25 000 tokens a fused qkv
    /// would exceed a 128 MiB storage binding); the camera head's few tokens keep it fused (one
    /// matmul instead of three).
    pub fn load(p: &Scope, c: &BlockConfig, split_qkv: Option<&Gpu>) -> MResult<Block> {
        let d = c.dim;
        Ok(Block {
            norm1: LayerNorm::load(&p.pp("norm1"), d, c.eps)?,
            attn: SelfAttention::load(&p.pp("attn"), c, split_qkv)?,
            ls1: LayerScale::load(&p.pp("ls1"), d)?,
            norm2: LayerNorm::load(&p.pp("norm2"), d, c.eps)?,
            mlp: Mlp::load(&p.pp("mlp"), ["fc1", "fc2"], d, c.mlp, d)?,
            ls2: LayerScale::load(&p.pp("ls2"), d)?,
        })
    }

    /// x + ls1 · proj(Attn(norm1 x)), then + ls2 · fc2(GELU(fc1(norm2 x))) `chunk` tokens at a
    /// time (hidden activations of [chunk, mlp] instead of [tokens, mlp]).
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor, segments: Option<&Tensor>, rope: Option<(&Tensor, &RopeTable)>, chunk: usize) -> MResult<Tensor> {
        let x = self.attention_residual(rec, x, segments, rope)?;
        chunk::by_rows(rec, x.rows(), chunk, x.cols(), |rec, rows| {
            let x = chunk::rows(rec, &x, rows)?;
            self.mlp_residual(rec, &x)
        })
    }

    /// x + ls1 · proj(Attn(norm1 x)); the attention's output is dropped on return, so the MLP's
    /// chunks reuse its buffer.
    fn attention_residual(&self, rec: &mut Recorder, x: &Tensor, segments: Option<&Tensor>, rope: Option<(&Tensor, &RopeTable)>) -> MResult<Tensor> {
        let y = self.norm1.forward(rec, x)?;
        let a = self.attn.forward(rec, y, segments, rope)?;
        self.ls1.forward_add(rec, x, &a)
    }

    /// x + ls2 · fc2(GELU(fc1(norm2 x))).
    fn mlp_residual(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        let y = self.norm2.forward(rec, x)?;
        let m = self.mlp.forward(rec, &y)?;
        self.ls2.forward_add(rec, x, &m)
    }
}
