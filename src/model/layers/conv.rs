//! `Conv2d`: a convolution of channels-last images (kernels::conv) with its weight and bias.

use crate::gpu::{Recorder, Tensor};
use crate::kernels::conv::{conv2d, conv_transpose2d, ConvEpilogue, ImageView};
use crate::model::params::Scope;
use crate::model::MResult;
use crate::weights::Weight;

/// Which convolution: odd `k` x `k` with `stride` and padding (k - 1) / 2, or transposed with
/// kernel == stride == `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    Conv { k: usize, stride: usize },
    Transposed { k: usize },
}

/// `nn.Conv2d` / `nn.ConvTranspose2d`: the packed `weight` ([out, in·k·k]; transposed [in,
/// out·k·k]) and an optional `bias` [out].
pub struct Conv2d {
    w: Weight,
    b: Option<Tensor>,
    kind: ConvKind,
}

impl Conv2d {
    /// The layer under `p`: `input` → `out` channels.
    pub fn load(p: &Scope, input: usize, out: usize, kind: ConvKind, bias: bool) -> MResult<Conv2d> {
        let (rows, cols) = match kind {
            ConvKind::Conv { k, .. } => (out, input * k * k),
            ConvKind::Transposed { k } => (input, out * k * k),
        };
        let b = if bias { Some(p.vector("bias", out)?) } else { None };
        Ok(Conv2d { w: p.matrix("weight", rows, cols)?, b, kind })
    }

    /// conv(x) + bias.
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        self.forward_with(rec, ImageView::of(x)?, false, ConvEpilogue::default())
    }

    /// The general form: conv(relu(x) if `relu_in`, else x) + bias, then `epi`'s terms (`epi.bias`
    /// is replaced by the layer's).
    pub fn forward_with(&self, rec: &mut Recorder, x: ImageView, relu_in: bool, epi: ConvEpilogue) -> MResult<Tensor> {
        let epi = ConvEpilogue { bias: self.b.as_ref(), ..epi };
        Ok(match self.kind {
            ConvKind::Conv { k, stride } => conv2d(rec, x, &self.w, k, stride, relu_in, epi)?,
            ConvKind::Transposed { k } => conv_transpose2d(rec, x, &self.w, k, relu_in, epi)?,
        })
    }
}
