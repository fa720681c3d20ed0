//! The connectors that turn VGGT's last aggregator layer into language-space embeddings added to
//! the ViT's merged tokens (spec section 3): 8 patch tokens (2 frames x 2x2 patches) per merged
//! token, regrouped in the generation's order, RMSNorm, Linear → GELU → Linear; v1.0 adds a second
//! RMSNorm + MLP in language space. Every step is per merged token, so long videos run in passes of
//! merged tokens whose 8·channels-wide rows fit one buffer binding.

use std::ops::Range;

use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::elementwise::add;
use crate::kernels::regroup::{regroup, RegroupOrder};
use crate::model::layers::{chunk, Linear, Mlp, RmsNorm};
use crate::model::vggt::LayerOutput;
use crate::model::{MResult, Params, Scope};

const EPS: f32 = 1e-6;
/// Bytes of a pass's widest tensors at most (they are 8·channels wide: 32 KiB per merged token
/// in f16). One pass at 16 frames of 644x476 would hold three of 104 MiB at once; passes of
/// equal size compute each row exactly as one pass does, so smaller ones only save memory.
pub const PASS_BYTES: usize = 32 << 20;

/// A checkpoint generation of Spatial-MLLM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// Diankun/Spatial-MLLM-subset-sft (`VGGTEmbeddingMerger`).
    V10,
    /// Spatial-MLLM-v1.1-Instruct-135K / -820K (`MLPAddConnector`).
    V11,
}

/// RMSNorm, then Linear → GELU → Linear. The Linears' weights may be stored in row parts (the
/// real connector's 16 384 x 16 384 matrix is larger than a shard).
struct NormMlp {
    norm: RmsNorm,
    mlp: Mlp,
}

impl NormMlp {
    /// The norm `norm` and the `nn.Sequential` MLP `mlp` (layers `0` and `2`) under `p`.
    fn load(gpu: &Gpu, p: &Scope, norm: &str, mlp: &str, input: usize, out: usize) -> MResult<NormMlp> {
        let m = p.pp(mlp);
        Ok(NormMlp {
            norm: RmsNorm::load(&p.pp(norm), input, EPS)?,
            mlp: Mlp { fc1: Linear::load_split(gpu, &m.pp(0), input, input)?, fc2: Linear::load_split(gpu, &m.pp(2), out, input)? },
        })
    }

    fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        let y = self.norm.forward(rec, x)?;
        self.mlp.forward(rec, &y)
    }
}

pub struct Connector {
    pub generation: Generation,
    merge: NormMlp,
    /// v1.0's second stage in language space.
    to_language: Option<NormMlp>,
    /// Merged tokens per pass at most (fewer where a pass's rows would not fit one binding);
    /// tests lower it to run the passes at small sizes.
    pub rows_per_pass: usize,
}

impl Connector {
    /// `channels` = 2 · VGGT dim (frame ‖ global features); `hidden` = the language model's width.
    pub fn new(gpu: &Gpu, p: &Params, generation: Generation, channels: usize, hidden: usize) -> MResult<Connector> {
        let (f, c) = (8 * channels, p.pp("connector"));
        Ok(match generation {
            Generation::V11 => Connector { generation, merge: NormMlp::load(gpu, &c, "ln_q", "mlp", f, hidden)?, to_language: None, rows_per_pass: usize::MAX },
            Generation::V10 => Connector {
                generation,
                merge: NormMlp::load(gpu, &c, "token_merge_ln_q", "token_merge_mlp", f, hidden)?,
                to_language: Some(NormMlp::load(gpu, &c, "vgg_to_language_ln_q", "vgg_to_language_mlp", hidden, hidden)?),
                rows_per_pass: usize::MAX,
            },
        })
    }

    /// The spatial embeddings e3D [frames/2 · h/2 · w/2, hidden] from the aggregator's last layer
    /// `layer` (halves [frames · tokens, channels / 2]), in the ViT merger's (t, I, J) order.
    pub fn project(&self, rec: &mut Recorder, layer: &LayerOutput, frames: usize, patch_start: usize, grid: (usize, usize)) -> MResult<Tensor> {
        let n = frames / 2 * (grid.0 / 2) * (grid.1 / 2);
        let gpu = rec.gpu;
        // The widest tensors are the regrouped features and fc1's output, 8·channels per row.
        let widest = n * self.merge.mlp.fc1.out_dim() * gpu.act.size();
        let limit = (gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size) as usize).min(PASS_BYTES);
        let passes = widest.div_ceil(limit).max(n.div_ceil(self.rows_per_pass.max(1))).max(1);
        // Passes of equal size: a row's arithmetic is the same as in one pass (while a pass has
        // more rows than the GEMV path takes).
        let hidden = self.to_language.as_ref().unwrap_or(&self.merge).mlp.fc2.out_dim();
        chunk::by_rows(rec, n, n.div_ceil(passes), hidden, |rec, rows| self.project_rows(rec, layer, frames, patch_start, grid, rows))
    }

    /// Rows `rows` of e3D.
    fn project_rows(&self, rec: &mut Recorder, layer: &LayerOutput, frames: usize, patch_start: usize, grid: (usize, usize), rows: Range<usize>) -> MResult<Tensor> {
        let order = match self.generation {
            Generation::V10 => RegroupOrder::V10,
            Generation::V11 => RegroupOrder::V11,
        };
        let x = regroup(rec, layer.halves(), frames, patch_start, grid, order, rows)?;
        let y = self.merge.forward(rec, &x)?;
        match &self.to_language {
            Some(m) => m.forward(rec, &y),
            None => Ok(y),
        }
    }

    /// Fused visual tokens: the ViT's merged tokens + e3D (element-wise; no gate, no scale).
    pub fn fuse(&self, rec: &mut Recorder, vit: &Tensor, spatial: &Tensor) -> MResult<Tensor> {
        Ok(add(rec, vit, spatial)?)
    }
}
