//! RMSNorm and LayerNorm, over whole rows or per head inside a wider token (q/k norm).

use bytemuck::{Pod, Zeroable};

use super::{check_act, NORM};
use crate::gpu::{error::shape_err, Binding, DType, PipelineKey, Recorder, Result, Tensor, Variant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rms,
    Layer,
}

/// Which rows to normalise: `heads` groups of `dim` per token, starting at `off` in a token of
/// `token_stride` elements. `Rows::dense(x)` is the usual last-dimension norm.
#[derive(Clone, Copy, Debug)]
pub struct Rows {
    pub dim: usize,
    pub heads: usize,
    pub token_stride: usize,
    pub off: usize,
}

impl Rows {
    pub fn dense(x: &Tensor) -> Rows {
        Rows { dim: x.cols(), heads: 1, token_stride: x.cols(), off: 0 }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    dim: u32,
    n_rows: u32,
    heads: u32,
    token_stride: u32,
    off: u32,
    eps: f32,
    _p: [u32; 2],
}

pub fn rms_norm(rec: &mut Recorder, x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
    norm(rec, Kind::Rms, x, Rows::dense(x), Some(weight), None, eps, false).map(|t| t.expect("out of place"))
}

pub fn layer_norm(rec: &mut Recorder, x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f32) -> Result<Tensor> {
    norm(rec, Kind::Layer, x, Rows::dense(x), weight, bias, eps, false).map(|t| t.expect("out of place"))
}

/// Per-head LayerNorm in place (VGGT's q/k norm over 64 dims inside a fused QKV).
pub fn head_layer_norm_inplace(rec: &mut Recorder, x: &Tensor, rows: Rows, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<()> {
    norm(rec, Kind::Layer, x, rows, Some(weight), Some(bias), eps, true).map(|_| ())
}

/// The general form; returns the output unless `inplace`.
#[allow(clippy::too_many_arguments)]
pub fn norm(
    rec: &mut Recorder,
    kind: Kind,
    x: &Tensor,
    rows: Rows,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
    inplace: bool,
) -> Result<Option<Tensor>> {
    let gpu = rec.gpu;
    check_act("norm", "X", x, gpu)?;
    if rows.token_stride == 0 || x.numel() % rows.token_stride != 0 || rows.off + rows.heads * rows.dim > rows.token_stride {
        return Err(shape_err("norm", format!("rows {rows:?} do not tile a tensor of shape {:?}", x.shape)));
    }
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.numel() != rows.dim || t.dtype != DType::F32 {
                return Err(shape_err("norm", format!("{name} must be {} f32 values, got {:?} {:?}", rows.dim, t.shape, t.dtype)));
            }
        }
    }
    if kind == Kind::Rms && bias.is_some() {
        return Err(shape_err("norm", "RMSNorm has no bias"));
    }
    let n_rows = x.numel() / rows.token_stride * rows.heads;
    let out = if inplace { None } else { Some(gpu.alloc_act(&x.shape)?) };
    let variant = Variant::new(gpu.act)
        .flag("REDUCE")
        .constant("RED_N", 128)
        .flag_if(kind == Kind::Rms, "RMS")
        .flag_if(inplace, "INPLACE")
        .flag_if(weight.is_some(), "WEIGHT")
        .flag_if(bias.is_some(), "BIAS");
    let pipe = gpu.pipeline(PipelineKey { src: &NORM, entry: "norm", variant: &variant });
    let p = Params {
        dim: rows.dim as u32,
        n_rows: n_rows as u32,
        heads: rows.heads as u32,
        token_stride: rows.token_stride as u32,
        off: rows.off as u32,
        eps,
        _p: [0; 2],
    };
    let mut binds = vec![Binding::t(1, x)];
    if let Some(w) = weight {
        binds.push(Binding::t(2, w));
    }
    if let Some(b) = bias {
        binds.push(Binding::t(3, b));
    }
    if let Some(o) = &out {
        binds.push(Binding::t(4, o));
    }
    rec.dispatch_flat(pipe, &p, &binds, n_rows as u32);
    Ok(out)
}
