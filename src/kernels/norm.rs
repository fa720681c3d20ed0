//! RMSNorm and LayerNorm, over whole rows or per head inside a wider token (q/k norm).

use super::{check_act, ACTS, NORM_WGSL};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

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

crate::uniform_params! {
    pub struct NormParams {
        dim: u32,
        n_rows: u32,
        heads: u32,
        token_stride: u32,
        off: u32,
        eps: f32,
    }
}

pub static NORM: Contract = Contract {
    src: NORM_WGSL,
    params: NormParams::FIELDS,
    slots: &[
        Slot::read("X", "array<Act>").write_if("INPLACE"),
        Slot::read("G", "array<f32>").when("WEIGHT"),
        Slot::read("B", "array<f32>").when("BIAS"),
        Slot::write("Y", "array<Act>").when("!INPLACE"),
    ],
    entries: &[Entry::new("norm", [128, 1, 1])],
};

/// What selects a norm variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormChoice {
    pub act: DType,
    pub kind: Kind,
    pub inplace: bool,
    pub weight: bool,
    pub bias: bool,
}

impl NormChoice {
    pub fn launch(self) -> Launch {
        let threads = NORM.entry("norm").threads();
        let variant = Variant::new(self.act)
            .flag("REDUCE")
            .constant("RED_N", threads)
            .flag_if(self.kind == Kind::Rms, "RMS")
            .flag_if(self.inplace, "INPLACE")
            .flag_if(self.weight, "WEIGHT")
            .flag_if(self.bias, "BIAS");
        Launch::new(&NORM, "norm", variant)
    }
}

/// Every variant `norm` can produce (RMSNorm has no bias).
pub fn launches() -> Vec<Launch> {
    let mut out = Vec::new();
    for act in ACTS {
        for kind in [Kind::Rms, Kind::Layer] {
            for bits in 0..8 {
                let (inplace, weight, bias) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
                if !(kind == Kind::Rms && bias) {
                    out.push(NormChoice { act, kind, inplace, weight, bias }.launch());
                }
            }
        }
    }
    out
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
    let launch = NormChoice { act: gpu.act, kind, inplace, weight: weight.is_some(), bias: bias.is_some() }.launch();
    let pipe = launch.pipeline(gpu);
    let p = NormParams { dim: rows.dim as u32, n_rows: n_rows as u32, heads: rows.heads as u32, token_stride: rows.token_stride as u32, off: rows.off as u32, eps };
    let mut binds = vec![NORM.bind("X", x)];
    if let Some(w) = weight {
        binds.push(NORM.bind("G", w));
    }
    if let Some(b) = bias {
        binds.push(NORM.bind("B", b));
    }
    if let Some(o) = &out {
        binds.push(NORM.bind("Y", o));
    }
    rec.dispatch_flat(pipe, &p, &binds, n_rows as u32);
    Ok(out)
}
