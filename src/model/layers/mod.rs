//! Layers as modules, loaded from a `Scope` of the package's names and run on the kernels: a
//! model's `new` builds them with `p.pp("self_attn").pp("q_proj")`-style paths, its `forward`
//! reads like the spec's section (`norm → attention → residual → norm → MLP → residual`).
//!
//! * `Linear`: weight [out, in], optional bias, the matmul kernel's fused epilogue (activation,
//!   product, residual); a matrix larger than one shard runs part by part (`Linear::load_split`).
//! * `Conv2d`: a convolution or transposed convolution of channels-last images (the DPT heads).
//! * `RmsNorm`, `LayerNorm` (also per head, in place: VGGT's q/k norm), `LayerScale`.
//! * `Mlp` (fc1 → GELU → fc2: the ViTs, DINOv2/VGGT, the merger, the connectors) and `GatedMlp`
//!   (Qwen's SwiGLU: down(SiLU(gate(x)) · up(x))).
//! * `chunk`: running work in row chunks or frame chunks with bounded temporaries.

pub mod chunk;
mod conv;
mod linear;
mod mlp;
mod norm;

pub use conv::{Conv2d, ConvKind};
pub use linear::Linear;
pub use mlp::{GatedMlp, Mlp};
pub use norm::{LayerNorm, LayerScale, RmsNorm};
