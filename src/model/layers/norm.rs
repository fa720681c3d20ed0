//! Normalisation layers and LayerScale.

use crate::gpu::{Recorder, Tensor};
use crate::kernels::decode::NormIn;
use crate::kernels::elementwise::layer_scale_add;
use crate::kernels::norm::{head_layer_norm_inplace, layer_norm, rms_norm, Rows};
use crate::model::params::Scope;
use crate::model::MResult;

/// RMSNorm with a learned scale `weight` [dim].
pub struct RmsNorm {
    w: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn load(p: &Scope, dim: usize, eps: f32) -> MResult<RmsNorm> {
        Ok(RmsNorm { w: p.vector("weight", dim)?, eps })
    }

    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        Ok(rms_norm(rec, x, &self.w, self.eps)?)
    }

    /// This norm as the prologue of the next matmul (`kernels::decode`).
    pub fn as_prologue(&self) -> NormIn<'_> {
        NormIn { weight: &self.w, eps: self.eps }
    }
}

/// LayerNorm with `weight` and `bias` [dim] (`nn.LayerNorm` with its default affine).
pub struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f32,
}

impl LayerNorm {
    pub fn load(p: &Scope, dim: usize, eps: f32) -> MResult<LayerNorm> {
        Ok(LayerNorm { w: p.vector("weight", dim)?, b: p.vector("bias", dim)?, eps })
    }

    /// Over the last dimension, out of place.
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        Ok(layer_norm(rec, x, Some(&self.w), Some(&self.b), self.eps)?)
    }

    /// Over the `rows` of `x` in place: per head inside a wider token (VGGT's q/k norm).
    pub fn forward_rows_inplace(&self, rec: &mut Recorder, x: &Tensor, rows: Rows) -> MResult<()> {
        Ok(head_layer_norm_inplace(rec, x, rows, &self.w, &self.b, self.eps)?)
    }
}

/// LayerScale: a learned per-channel `gamma` [dim] on a residual branch.
pub struct LayerScale {
    gamma: Tensor,
}

impl LayerScale {
    pub fn load(p: &Scope, dim: usize) -> MResult<LayerScale> {
        Ok(LayerScale { gamma: p.vector("gamma", dim)? })
    }

    /// residual + gamma · branch.
    pub fn forward_add(&self, rec: &mut Recorder, residual: &Tensor, branch: &Tensor) -> MResult<Tensor> {
        Ok(layer_scale_add(rec, residual, branch, &self.gamma)?)
    }
}
