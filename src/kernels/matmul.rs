//! Linear layers: Y = X · Wᵀ (+ bias) with a fused epilogue. Many rows go to the tiled GEMM (the
//! core shared with conv, shaders/gemm_core.wgsl, at the device's `Gpu::gemm_tile`), up to
//! `GEMV_MAX_ROWS` rows (decode) to the split-K GEMV.

use bytemuck::{Pod, Zeroable};

use super::{check_act, MATMUL};
use crate::gpu::{error::shape_err, Binding, GemmTile, PipelineKey, Recorder, Result, Tensor, Variant};
use crate::weights::{Weight, WeightFormat};

/// Largest row count for which the GEMV path is used.
pub const GEMV_MAX_ROWS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    Gelu,
    Silu,
}

/// What happens to each output after the dot product: `((acc + bias) |> act) * mul + add`.
#[derive(Clone, Copy)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a Tensor>,
    pub act: Activation,
    pub mul: Option<&'a Tensor>,
    pub add: Option<&'a Tensor>,
}

impl<'a> Epilogue<'a> {
    pub fn none() -> Self {
        Epilogue { bias: None, act: Activation::None, mul: None, add: None }
    }
    pub fn bias(b: Option<&'a Tensor>) -> Self {
        Epilogue { bias: b, ..Self::none() }
    }
    pub fn with_act(mut self, act: Activation) -> Self {
        self.act = act;
        self
    }
    pub fn with_mul(mut self, t: &'a Tensor) -> Self {
        self.mul = Some(t);
        self
    }
    pub fn with_add(mut self, t: &'a Tensor) -> Self {
        self.add = Some(t);
        self
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    kp: u32,
    soff: u32,
    _p: [u32; 3],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Auto,
    Gemm,
    Gemv,
}

/// Y[.., N] = X[.., K] · Wᵀ with epilogue; the path chosen by row count.
pub fn linear(rec: &mut Recorder, x: &Tensor, w: &Weight, epi: Epilogue) -> Result<Tensor> {
    linear_with(rec, x, w, epi, Path::Auto)
}

pub fn linear_with(rec: &mut Recorder, x: &Tensor, w: &Weight, epi: Epilogue, path: Path) -> Result<Tensor> {
    let tile = rec.gpu.gemm_tile();
    linear_tiled(rec, x, w, epi, path, tile)
}

/// `linear_with` whose tiled GEMM uses `tile` instead of the device's (for measuring tilings).
pub fn linear_tiled(rec: &mut Recorder, x: &Tensor, w: &Weight, epi: Epilogue, path: Path, tile: GemmTile) -> Result<Tensor> {
    let gpu = rec.gpu;
    check_act("matmul", "X", x, gpu)?;
    let (m, k, n) = (x.rows(), x.cols(), w.rows);
    if k != w.cols {
        return Err(shape_err("matmul", format!("X has {k} columns but the weight has {} (shape [{n}, {}])", w.cols, w.cols)));
    }
    if let Some(b) = epi.bias {
        if b.numel() != n || b.dtype != crate::gpu::DType::F32 {
            return Err(shape_err("matmul", format!("bias must be {n} f32 values, got {:?} {:?}", b.shape, b.dtype)));
        }
    }
    for (name, t) in [("mul", epi.mul), ("add", epi.add)] {
        if let Some(t) = t {
            check_act("matmul", name, t, gpu)?;
            if t.numel() != m * n {
                return Err(shape_err("matmul", format!("{name} operand has {} elements, expected {m}x{n}", t.numel())));
            }
        }
    }
    let mut shape = x.shape.clone();
    *shape.last_mut().unwrap() = n;
    let y = gpu.alloc_act(&shape)?;
    let gemv = match path {
        Path::Auto => m <= GEMV_MAX_ROWS,
        Path::Gemv => true,
        Path::Gemm => false,
    };
    let variant = Variant::new(gpu.act)
        .flag(if gemv { "GEMV" } else { "GEMM" })
        .flag(w.format.flag())
        .flag_if(epi.bias.is_some(), "BIAS")
        .flag_if(epi.act == Activation::Gelu, "GELU")
        .flag_if(epi.act == Activation::Silu, "SILU")
        .flag_if(epi.mul.is_some(), "MUL")
        .flag_if(epi.add.is_some(), "ADD")
        // X read as vec4s: by the tiled GEMM whenever K allows, by the GEMV for q4 weights.
        .flag_if(k % 4 == 0 && (!gemv || w.format == WeightFormat::Q4), "X4");
    let variant = if gemv { variant } else { tile.apply(variant) };
    let entry = if gemv { "gemv" } else { "gemm" };
    let pipe = gpu.pipeline(PipelineKey { src: &MATMUL, entry, variant: &variant });
    let params = Params { m: m as u32, n: n as u32, k: k as u32, kp: w.padded_cols() as u32, soff: w.scale_offset, _p: [0; 3] };
    let mut binds = vec![Binding::t(1, x), Binding(2, &w.buf), Binding::t(3, &y)];
    if let Some(b) = epi.bias {
        binds.push(Binding::t(4, b));
    }
    if let Some(t) = epi.mul {
        binds.push(Binding::t(5, t));
    }
    if let Some(t) = epi.add {
        binds.push(Binding::t(6, t));
    }
    if gemv {
        let mut groups = crate::gpu::recorder_flat_groups((n as u32).div_ceil(8), gpu.limits.max_compute_workgroups_per_dimension);
        groups[2] = m as u32;
        rec.dispatch(pipe, &params, &binds, groups);
    } else {
        let [gx, gy] = tile.groups(m, n);
        rec.dispatch(pipe, &params, &binds, [gx as u32, gy as u32, 1]);
    }
    Ok(y)
}
