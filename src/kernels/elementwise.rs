//! Element-wise activations and combinations (residual add, gates, LayerScale, ReLU on a column
//! range, adaLN modulation with a gated residual).

use bytemuck::{Pod, Zeroable};

use super::{check_act, ELEMENTWISE, FLAT_WG};
use crate::gpu::{error::shape_err, Binding, DType, PipelineKey, Recorder, Result, Tensor, Variant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// a + b
    Add,
    /// a * b
    Mul,
    /// silu(a)
    Silu,
    /// gelu(a), exact erf form
    Gelu,
    /// silu(a) * b (SwiGLU gate)
    SiluMul,
    /// a * gamma[col] (LayerScale)
    Scale,
    /// a + b * gamma[col] (LayerScale on a residual branch)
    ScaleAdd,
    /// max(a, 0) on every column (`relu_columns` restricts it to a range)
    Relu,
}

impl Op {
    fn flag(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Mul => "MUL",
            Op::Silu => "SILU",
            Op::Gelu => "GELU",
            Op::SiluMul => "SILU_MUL",
            Op::Scale => "SCALE",
            Op::ScaleAdd => "SCALE_ADD",
            Op::Relu => "RELU",
        }
    }
    fn needs_b(self) -> bool {
        matches!(self, Op::Add | Op::Mul | Op::SiluMul | Op::ScaleAdd)
    }
    fn needs_gamma(self) -> bool {
        matches!(self, Op::Scale | Op::ScaleAdd)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    cols: u32,
    /// Columns lo..hi that RELU applies to.
    lo: u32,
    hi: u32,
}

/// Apply `op`; `b` and `gamma` are required exactly when the op uses them.
pub fn elementwise(rec: &mut Recorder, op: Op, a: &Tensor, b: Option<&Tensor>, gamma: Option<&Tensor>) -> Result<Tensor> {
    elementwise_cols(rec, op, a, b, gamma, 0..a.cols())
}

fn elementwise_cols(rec: &mut Recorder, op: Op, a: &Tensor, b: Option<&Tensor>, gamma: Option<&Tensor>, cols: std::ops::Range<usize>) -> Result<Tensor> {
    let gpu = rec.gpu;
    check_act("elementwise", "a", a, gpu)?;
    if op.needs_b() != b.is_some() || op.needs_gamma() != gamma.is_some() {
        return Err(shape_err("elementwise", format!("{op:?} got the wrong operands")));
    }
    if let Some(b) = b {
        check_act("elementwise", "b", b, gpu)?;
        if b.numel() != a.numel() {
            return Err(shape_err("elementwise", format!("{op:?}: {:?} and {:?} differ in size", a.shape, b.shape)));
        }
    }
    if let Some(g) = gamma {
        if g.dtype != DType::F32 || g.numel() != a.cols() {
            return Err(shape_err("elementwise", format!("{op:?}: gamma must be {} f32 values", a.cols())));
        }
    }
    let y = gpu.alloc_act(&a.shape)?;
    let variant = Variant::new(gpu.act).flag(op.flag());
    let pipe = gpu.pipeline(PipelineKey { src: &ELEMENTWISE, entry: "main", variant: &variant });
    let mut binds = vec![Binding::t(1, a), Binding::t(4, &y)];
    if let Some(b) = b {
        binds.push(Binding::t(2, b));
    }
    if let Some(g) = gamma {
        binds.push(Binding::t(3, g));
    }
    let p = Params { n: a.numel() as u32, cols: a.cols() as u32, lo: cols.start as u32, hi: cols.end as u32 };
    rec.dispatch_flat(pipe, &p, &binds, (a.numel() as u32).div_ceil(FLAT_WG));
    Ok(y)
}

/// max(a, 0) on the columns `cols` of every row, the other columns copied (VGGT's pose activation:
/// ReLU on the field of view only).
pub fn relu_columns(rec: &mut Recorder, a: &Tensor, cols: std::ops::Range<usize>) -> Result<Tensor> {
    if cols.start > cols.end || cols.end > a.cols() {
        return Err(shape_err("elementwise", format!("ReLU columns {cols:?} outside rows of {}", a.cols())));
    }
    elementwise_cols(rec, Op::Relu, a, None, None, cols)
}

/// residual + gate * (x * (1 + scale) + shift), where row t of `mods` [rows, 3 * cols] holds
/// [shift | scale | gate] for row t of `x` and `residual` [rows, cols] (DiT's adaLN modulation,
/// as VGGT's camera head applies it).
pub fn modulate(rec: &mut Recorder, x: &Tensor, mods: &Tensor, residual: &Tensor) -> Result<Tensor> {
    let gpu = rec.gpu;
    check_act("elementwise", "x", x, gpu)?;
    check_act("elementwise", "mods", mods, gpu)?;
    check_act("elementwise", "residual", residual, gpu)?;
    let (rows, cols) = (x.rows(), x.cols());
    if mods.rows() != rows || mods.cols() != 3 * cols {
        return Err(shape_err("elementwise", format!("modulate: mods {:?} must be [{rows}, {}] for x {:?}", mods.shape, 3 * cols, x.shape)));
    }
    if residual.numel() != x.numel() {
        return Err(shape_err("elementwise", format!("modulate: residual {:?} and x {:?} differ in size", residual.shape, x.shape)));
    }
    let y = gpu.alloc_act(&x.shape)?;
    let variant = Variant::new(gpu.act).flag("MODULATE");
    let pipe = gpu.pipeline(PipelineKey { src: &ELEMENTWISE, entry: "main", variant: &variant });
    let binds = [Binding::t(1, x), Binding::t(2, mods), Binding::t(4, &y), Binding::t(5, residual)];
    let p = Params { n: x.numel() as u32, cols: cols as u32, lo: 0, hi: 0 };
    rec.dispatch_flat(pipe, &p, &binds, (x.numel() as u32).div_ceil(FLAT_WG));
    Ok(y)
}

pub fn add(rec: &mut Recorder, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    elementwise(rec, Op::Add, a, Some(b), None)
}
pub fn silu_mul(rec: &mut Recorder, gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    elementwise(rec, Op::SiluMul, gate, Some(up), None)
}
pub fn gelu(rec: &mut Recorder, a: &Tensor) -> Result<Tensor> {
    elementwise(rec, Op::Gelu, a, None, None)
}
/// residual + branch * gamma
pub fn layer_scale_add(rec: &mut Recorder, residual: &Tensor, branch: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    elementwise(rec, Op::ScaleAdd, residual, Some(branch), Some(gamma))
}
