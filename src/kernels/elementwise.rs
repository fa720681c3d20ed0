//! Element-wise activations and combinations (residual add, gates, LayerScale, ReLU on a column
//! range, adaLN modulation with a gated residual).

use super::{check_act, ACTS, ELEMENTWISE_WGSL, FLAT_WG};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

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
    pub const ALL: [Op; 8] = [Op::Add, Op::Mul, Op::Silu, Op::Gelu, Op::SiluMul, Op::Scale, Op::ScaleAdd, Op::Relu];
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

crate::uniform_params! {
    pub struct ElementwiseParams {
        n: u32,
        cols: u32,
        /// Columns lo..hi that RELU applies to.
        lo: u32,
        hi: u32,
    }
}

pub static ELEMENTWISE: Contract = Contract {
    src: ELEMENTWISE_WGSL,
    params: ElementwiseParams::FIELDS,
    slots: &[
        Slot::read("A", "array<Act>"),
        Slot::read("B", "array<Act>").when("ADD|MUL|SILU_MUL|SCALE_ADD|MODULATE"),
        Slot::read("G", "array<f32>").when("SCALE|SCALE_ADD"),
        Slot::write("Y", "array<Act>"),
        Slot::read("R", "array<Act>").when("MODULATE"),
    ],
    entries: &[Entry::new("main", [FLAT_WG, 1, 1])],
};

/// What selects an element-wise variant: an op, or adaLN modulation (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementwiseChoice {
    pub act: DType,
    pub op: Option<Op>,
}

impl ElementwiseChoice {
    pub fn launch(self) -> Launch {
        Launch::new(&ELEMENTWISE, "main", Variant::new(self.act).flag(self.op.map_or("MODULATE", Op::flag)))
    }
}

/// Every variant the element-wise launchers can produce.
pub fn launches() -> Vec<Launch> {
    let ops = Op::ALL.map(Some).into_iter().chain([None]);
    ACTS.into_iter().flat_map(|act| ops.clone().map(move |op| ElementwiseChoice { act, op }.launch())).collect()
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
    let launch = ElementwiseChoice { act: gpu.act, op: Some(op) }.launch();
    let pipe = launch.pipeline(gpu);
    let mut binds = vec![ELEMENTWISE.bind("A", a), ELEMENTWISE.bind("Y", &y)];
    if let Some(b) = b {
        binds.push(ELEMENTWISE.bind("B", b));
    }
    if let Some(g) = gamma {
        binds.push(ELEMENTWISE.bind("G", g));
    }
    let p = ElementwiseParams { n: a.numel() as u32, cols: a.cols() as u32, lo: cols.start as u32, hi: cols.end as u32 };
    rec.dispatch_flat(pipe, &p, &binds, launch.entry().groups(a.numel() as u32));
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
    let launch = ElementwiseChoice { act: gpu.act, op: None }.launch();
    let pipe = launch.pipeline(gpu);
    let binds = [ELEMENTWISE.bind("A", x), ELEMENTWISE.bind("B", mods), ELEMENTWISE.bind("Y", &y), ELEMENTWISE.bind("R", residual)];
    let p = ElementwiseParams { n: x.numel() as u32, cols: cols as u32, lo: 0, hi: 0 };
    rec.dispatch_flat(pipe, &p, &binds, launch.entry().groups(x.numel() as u32));
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
