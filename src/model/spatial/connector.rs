//! The connectors that turn VGGT's last aggregator layer into language-space embeddings added to
//! the ViT's merged tokens (spec section 3): 8 patch tokens (2 frames x 2x2 patches) per merged
//! token, regrouped in the generation's order, RMSNorm, Linear → GELU → Linear; v1.0 adds a second
//! RMSNorm + MLP in language space. Every step is per merged token, so long videos run in passes of
//! merged tokens whose 8·channels-wide rows fit one buffer binding.

use std::ops::Range;

use crate::gpu::{DType, Gpu, Recorder, Tensor};
use crate::kernels::gather::place_cols;
use crate::kernels::elementwise::add;
use crate::kernels::matmul::{linear, Activation, Epilogue};
use crate::kernels::norm::rms_norm;
use crate::kernels::regroup::{regroup, RegroupOrder};
use crate::model::vggt::LayerOutput;
use crate::model::{MResult, Params};
use crate::weights::Weight;

const EPS: f32 = 1e-6;

/// A checkpoint generation of Spatial-MLLM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// Diankun/Spatial-MLLM-subset-sft (`VGGTEmbeddingMerger`).
    V10,
    /// Spatial-MLLM-v1.1-Instruct-135K / -820K (`MLPAddConnector`).
    V11,
}

/// A Linear whose weight may be stored in row parts (the real connector's 16 384 x 16 384 matrix
/// is larger than a shard): each part computes its slice of the output columns.
struct SplitLinear {
    /// (weight part, its slice of the bias, first output column).
    parts: Vec<(Weight, Tensor, usize)>,
    out: usize,
}

impl SplitLinear {
    fn load(gpu: &Gpu, p: &Params, name: &str, out: usize, input: usize) -> MResult<SplitLinear> {
        let weights = p.matrix_parts(&format!("{name}.weight"), out, input)?;
        let bias = p.vector(&format!("{name}.bias"), out)?;
        let mut rec = Recorder::new(gpu);
        let mut parts = Vec::new();
        let mut r0 = 0;
        for w in weights {
            let slice = gpu.alloc(&[w.rows], DType::F32)?;
            rec.copy(&bias, (r0 * 4) as u64, &slice, 0, (w.rows * 4) as u64);
            let rows = w.rows;
            parts.push((w, slice, r0));
            r0 += rows;
        }
        rec.submit()?;
        Ok(SplitLinear { parts, out })
    }

    fn forward(&self, rec: &mut Recorder, x: &Tensor, act: Option<Activation>) -> MResult<Tensor> {
        let epi = |b| {
            let e = Epilogue::bias(Some(b));
            match act {
                Some(a) => e.with_act(a),
                None => e,
            }
        };
        if let [(w, b, _)] = &self.parts[..] {
            return Ok(linear(rec, x, w, epi(b))?);
        }
        let y = rec.gpu.alloc_act(&[x.rows(), self.out])?;
        for (w, b, c0) in &self.parts {
            let part = linear(rec, x, w, epi(b))?;
            place_cols(rec, &part, 0, &y, *c0)?;
        }
        Ok(y)
    }
}

/// RMSNorm, then Linear → GELU → Linear.
struct NormMlp {
    norm: Tensor,
    fc1: SplitLinear,
    fc2: SplitLinear,
}

impl NormMlp {
    fn load(gpu: &Gpu, p: &Params, norm: &str, mlp: &str, input: usize, out: usize) -> MResult<NormMlp> {
        Ok(NormMlp {
            norm: p.vector(&format!("{norm}.weight"), input)?,
            fc1: SplitLinear::load(gpu, p, &format!("{mlp}.0"), input, input)?,
            fc2: SplitLinear::load(gpu, p, &format!("{mlp}.2"), out, input)?,
        })
    }

    fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        let y = rms_norm(rec, x, &self.norm, EPS)?;
        let h = self.fc1.forward(rec, &y, Some(Activation::Gelu))?;
        self.fc2.forward(rec, &h, None)
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
        let f = 8 * channels;
        Ok(match generation {
            Generation::V11 => {
                Connector { generation, merge: NormMlp::load(gpu, p, "connector.ln_q", "connector.mlp", f, hidden)?, to_language: None, rows_per_pass: usize::MAX }
            }
            Generation::V10 => Connector {
                generation,
                merge: NormMlp::load(gpu, p, "connector.token_merge_ln_q", "connector.token_merge_mlp", f, hidden)?,
                to_language: Some(NormMlp::load(gpu, p, "connector.vgg_to_language_ln_q", "connector.vgg_to_language_mlp", hidden, hidden)?),
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
        let widest = n * self.merge.fc1.out * gpu.act.size();
        let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size) as usize;
        let passes = widest.div_ceil(limit).max(n.div_ceil(self.rows_per_pass.max(1))).max(1);
        if passes == 1 {
            return self.project_rows(rec, layer, frames, patch_start, grid, 0..n);
        }
        // Passes of equal size: a row's arithmetic is the same as in one pass (while a pass has
        // more rows than the GEMV path takes).
        let per = n.div_ceil(passes);
        let hidden = self.to_language.as_ref().unwrap_or(&self.merge).fc2.out;
        let out = gpu.alloc_act(&[n, hidden])?;
        let row = (hidden * gpu.act.size()) as u64;
        for r0 in (0..n).step_by(per) {
            let r1 = (r0 + per).min(n);
            let y = self.project_rows(rec, layer, frames, patch_start, grid, r0..r1)?;
            rec.copy(&y, 0, &out, r0 as u64 * row, (r1 - r0) as u64 * row);
            rec.flush()?; // the next pass reuses this one's buffers
        }
        Ok(out)
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
