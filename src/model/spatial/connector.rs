//! The connectors that turn VGGT's last aggregator layer into language-space embeddings added to
//! the ViT's merged tokens (spec section 3): 8 patch tokens (2 frames x 2x2 patches) per merged
//! token, regrouped in the generation's order, RMSNorm, Linear → GELU → Linear; v1.0 adds a second
//! RMSNorm + MLP in language space.

use crate::gpu::{Recorder, Tensor};
use crate::kernels::elementwise::add;
use crate::kernels::matmul::{linear, Activation, Epilogue};
use crate::kernels::norm::rms_norm;
use crate::kernels::regroup::{regroup, RegroupOrder};
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

/// RMSNorm, then Linear → GELU → Linear.
struct NormMlp {
    norm: Tensor,
    fc1: Weight,
    fc1_bias: Tensor,
    fc2: Weight,
    fc2_bias: Tensor,
}

impl NormMlp {
    fn load(p: &Params, norm: &str, mlp: &str, input: usize, out: usize) -> MResult<NormMlp> {
        Ok(NormMlp {
            norm: p.vector(&format!("{norm}.weight"), input)?,
            fc1: p.matrix(&format!("{mlp}.0.weight"), input, input)?,
            fc1_bias: p.vector(&format!("{mlp}.0.bias"), input)?,
            fc2: p.matrix(&format!("{mlp}.2.weight"), out, input)?,
            fc2_bias: p.vector(&format!("{mlp}.2.bias"), out)?,
        })
    }

    fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        let y = rms_norm(rec, x, &self.norm, EPS)?;
        let h = linear(rec, &y, &self.fc1, Epilogue::bias(Some(&self.fc1_bias)).with_act(Activation::Gelu))?;
        Ok(linear(rec, &h, &self.fc2, Epilogue::bias(Some(&self.fc2_bias)))?)
    }
}

pub struct Connector {
    pub generation: Generation,
    merge: NormMlp,
    /// v1.0's second stage in language space.
    to_language: Option<NormMlp>,
}

impl Connector {
    /// `channels` = 2 · VGGT dim (frame ‖ global features); `hidden` = the language model's width.
    pub fn new(p: &Params, generation: Generation, channels: usize, hidden: usize) -> MResult<Connector> {
        let f = 8 * channels;
        Ok(match generation {
            Generation::V11 => Connector { generation, merge: NormMlp::load(p, "connector.ln_q", "connector.mlp", f, hidden)?, to_language: None },
            Generation::V10 => Connector {
                generation,
                merge: NormMlp::load(p, "connector.token_merge_ln_q", "connector.token_merge_mlp", f, hidden)?,
                to_language: Some(NormMlp::load(p, "connector.vgg_to_language_ln_q", "connector.vgg_to_language_mlp", hidden, hidden)?),
            },
        })
    }

    /// The spatial embeddings e3D [frames/2 · h/2 · w/2, hidden] from the aggregator's last layer
    /// `layer` [frames · tokens, channels], in the ViT merger's (t, I, J) order.
    pub fn project(&self, rec: &mut Recorder, layer: &Tensor, frames: usize, patch_start: usize, grid: (usize, usize)) -> MResult<Tensor> {
        let order = match self.generation {
            Generation::V10 => RegroupOrder::V10,
            Generation::V11 => RegroupOrder::V11,
        };
        let x = regroup(rec, layer, frames, patch_start, grid, order)?;
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
