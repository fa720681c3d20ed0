//! The fused GEMVs of a decode step (a few rows of X, one per workgroup z): the matmul family's
//! `gemv` with a prologue (RMSNorm of X, or the merge of the attention's key ranges) and fused
//! outputs (q | k | v with bias, M-RoPE and the KV-cache write; SiLU(gate) * up). Each computes
//! exactly what the separate kernels compute, to the bit (the same sums in the same order, the
//! same roundings to the activation type), in one dispatch instead of two to five.

use super::check_act;
use super::matmul::{Activation, Fused, MatmulChoice, MatmulParams, GEMV_MAX_ROWS, MATMUL};
use super::rope::{RopeKind, RopeTable};
use crate::gpu::{error::shape_err, Binding, DType, GemmTile, Gpu, Launch, Recorder, Result, Tensor};
use crate::weights::{Weight, WeightFormat};

/// Most columns of X a prologue can stage (`STAGED_K` in shaders/matmul.wgsl): 14 KiB of f32 in
/// workgroup memory. Qwen2.5-VL's widths (2048 for 3B, 3584 for 7B) fit.
pub const MAX_STAGED_K: usize = 3584;
/// Most heads the merge prologue holds statistics for (`head_ml` in the shader).
pub const MAX_COMBINE_HEADS: usize = 64;
/// Rows per GEMV workgroup (`GEMV_WG_Y`); paired layouts need half-blocks divisible by half of it.
const GEMV_ROWS: usize = 8;

/// An RMSNorm folded into the prologue: its weight [K] (f32) and epsilon.
#[derive(Clone, Copy)]
pub struct NormIn<'a> {
    pub weight: &'a Tensor,
    pub eps: f32,
}

/// The attention's unmerged key ranges (`attention::AttentionOut::Ranges`) as a matmul's input.
pub struct Ranges<'a> {
    pub part: &'a Tensor,
    pub ml: &'a Tensor,
    pub n_split: usize,
    pub heads: usize,
    pub head_dim: usize,
}

/// Where q | k | v go: q to a new tensor, k and v into a layer's cache (keys in rows
/// `past..`, values in rows from `v_base` elements on, see `model::qwen::KvCache`).
pub struct QkvOut<'a> {
    pub cache: &'a Tensor,
    pub v_base: usize,
    pub past: usize,
    pub heads: usize,
    pub kv_heads: usize,
    /// M-RoPE positions, I32 [rows, 3].
    pub pos: &'a Tensor,
    pub rope: &'a RopeTable,
}

/// What the fused q/k/v pass reads besides X and the weights, in one f32 vector, since WebGPU
/// guarantees only 8 storage buffers per shader stage: the input norm's weight [hidden], the
/// q | k | v biases, the rotary inverse frequencies [head_dim / 2]. Built once per layer at load.
pub struct QkvAux {
    pub(super) aux: Tensor,
    eps: f32,
    hidden: usize,
    rows: usize,
}

impl QkvAux {
    pub fn new(gpu: &Gpu, norm: NormIn, biases: [&Tensor; 3], rope: &RopeTable) -> Result<QkvAux> {
        let parts = [norm.weight, biases[0], biases[1], biases[2], rope.freq_tensor()];
        if parts.iter().any(|t| t.dtype != DType::F32) {
            return Err(shape_err("decode gemv", "the norm weight, biases and frequencies must be f32"));
        }
        let total: usize = parts.iter().map(|t| t.numel()).sum();
        let aux = gpu.alloc(&[total], DType::F32)?;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let mut at = 0;
        for t in parts {
            enc.copy_buffer_to_buffer(&t.buf.raw, 0, &aux.buf.raw, at, t.bytes());
            at += t.bytes();
        }
        gpu.queue.submit(Some(enc.finish()));
        let rows = biases.iter().map(|b| b.numel()).sum();
        Ok(QkvAux { aux, eps: norm.eps, hidden: norm.weight.numel(), rows })
    }
}

pub(super) fn choice(act: DType, format: WeightFormat, k4: bool, bias: bool, add: bool, fused: Fused) -> MatmulChoice {
    MatmulChoice { act, gemv: true, format, bias, activation: Activation::None, mul: false, add, k4, tile: GemmTile::DEFAULT, fused }
}

/// Every fused variant the launchers below can produce.
pub fn launches() -> Vec<Launch> {
    let mut out = Vec::new();
    for act in super::ACTS {
        for format in [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4] {
            for k4 in [false, true] {
                out.push(choice(act, format, k4, false, false, Fused::QkvRope).launch());
                for norm in [false, true] {
                    out.push(choice(act, format, k4, false, false, Fused::SwiGlu { norm }).launch());
                }
                out.push(choice(act, format, k4, false, false, Fused::NormIn { multi: true }).launch());
                for bias in [false, true] {
                    out.push(choice(act, format, k4, bias, false, Fused::NormIn { multi: false }).launch());
                    out.push(choice(act, format, k4, bias, true, Fused::Combine).launch());
                }
            }
        }
    }
    out
}

/// Whether the fused GEMVs can take X of `rows` x `k` (a decode step of a model this narrow).
pub fn fits(rows: usize, k: usize) -> bool {
    rows <= GEMV_MAX_ROWS && k <= MAX_STAGED_K
}

pub(super) fn check_x(rec: &Recorder, x: &Tensor, k: usize) -> Result<()> {
    check_act("decode gemv", "X", x, rec.gpu)?;
    if !fits(x.rows(), k) || x.cols() != k {
        return Err(shape_err("decode gemv", format!("X {:?} must be at most {GEMV_MAX_ROWS} rows of {k} <= {MAX_STAGED_K} columns", x.shape)));
    }
    Ok(())
}

fn check_norm(norm: Option<NormIn>, k: usize) -> Result<()> {
    match norm {
        Some(n) if n.weight.numel() != k || n.weight.dtype != DType::F32 => {
            Err(shape_err("decode gemv", format!("the norm's weight must be {k} f32 values, got {:?} {:?}", n.weight.shape, n.weight.dtype)))
        }
        _ => Ok(()),
    }
}

/// The matrices of one fused GEMV: same width and format, rows stacked W | W2 | W3.
fn check_stack(ws: &[&Weight], k: usize) -> Result<()> {
    if ws.iter().any(|w| w.cols != k || w.format != ws[0].format) {
        return Err(shape_err("decode gemv", format!("fused matrices must all be {k} columns wide in one format")));
    }
    Ok(())
}

/// Launch one fused GEMV over `n` output rows (`rows_per_block`: the paired block's half, or 0).
pub(super) fn dispatch(rec: &mut Recorder, c: MatmulChoice, params: &MatmulParams, binds: &[Binding<'_>], n: usize, m: usize) {
    let gpu = rec.gpu;
    let launch = c.launch();
    let rows = launch.workgroup()[1];
    let mut groups = crate::gpu::recorder_flat_groups((n as u32).div_ceil(rows), gpu.limits.max_compute_workgroups_per_dimension);
    groups[2] = m as u32;
    rec.dispatch(launch.pipeline(gpu), params, binds, groups);
}

/// The paired row layout needs blocks of 2 * half rows that cover N, half a multiple of 4.
fn check_paired(half: usize, n: usize) -> Result<()> {
    if half == 0 || half % (GEMV_ROWS / 2) != 0 || n % (2 * half) != 0 {
        return Err(shape_err("decode gemv", format!("{n} rows cannot be paired in blocks of 2 x {half}")));
    }
    Ok(())
}

/// The sizes of a q/k/v pass over X (`rows` x hidden) into `out`, checked: (q_dim, kv_dim).
pub(super) fn check_qkv(rec: &Recorder, x: &Tensor, aux: &QkvAux, w: [&Weight; 3], out: &QkvOut) -> Result<(usize, usize)> {
    let gpu = rec.gpu;
    let k = w[0].cols;
    check_x(rec, x, k)?;
    check_stack(&w, k)?;
    let rope = out.rope;
    let hd = rope.head_dim;
    let RopeKind::MRope { .. } = rope.kind else {
        return Err(shape_err("decode gemv", "the fused q/k/v projection rotates by M-RoPE only"));
    };
    let (q_dim, kv_dim) = (out.heads * hd, out.kv_heads * hd);
    if w[0].rows != q_dim || w[1].rows != kv_dim || w[2].rows != kv_dim {
        return Err(shape_err("decode gemv", format!("q/k/v have {}/{}/{} rows, expected {q_dim}/{kv_dim}/{kv_dim}", w[0].rows, w[1].rows, w[2].rows)));
    }
    let n = q_dim + 2 * kv_dim;
    check_paired(hd / 2, n)?;
    if aux.hidden != k || aux.rows != n || aux.aux.numel() != k + n + hd / 2 {
        return Err(shape_err("decode gemv", format!("the q/k/v aux vector was built for {} columns and {} rows, not {k} and {n}", aux.hidden, aux.rows)));
    }
    let m = x.rows();
    check_act("decode gemv", "KV cache", out.cache, gpu)?;
    if out.cache.cols() != kv_dim || out.v_base % kv_dim != 0 || out.v_base / kv_dim < out.past + m || out.v_base + (out.past + m) * kv_dim > out.cache.numel() {
        return Err(shape_err(
            "decode gemv",
            format!("KV cache {:?} (values from {}) has no rows {}..{} of {kv_dim}", out.cache.shape, out.v_base, out.past, out.past + m),
        ));
    }
    if out.pos.dtype != DType::I32 || out.pos.numel() != 3 * m {
        return Err(shape_err("decode gemv", format!("positions must be I32 [{m}, 3], got {:?}", out.pos.shape)));
    }
    Ok((q_dim, kv_dim))
}

/// The uniforms and bindings of a q/k/v pass (everything but its outputs besides the cache).
pub(super) fn qkv_params(x: &Tensor, aux: &QkvAux, w: [&Weight; 3], out: &QkvOut) -> MatmulParams {
    let rope = out.rope;
    let hd = rope.head_dim;
    let (q_dim, kv_dim) = (out.heads * hd, out.kv_heads * hd);
    MatmulParams {
        n1: q_dim as u32,
        n2: (q_dim + kv_dim) as u32,
        soff2: w[1].scale_offset,
        soff3: w[2].scale_offset,
        half: (hd / 2) as u32,
        eps: aux.eps,
        q_dim: q_dim as u32,
        kv_dim: kv_dim as u32,
        past: out.past as u32,
        v_base: out.v_base as u32,
        sec0: rope.sec[0] as u32,
        sec1: rope.sec[1] as u32,
        n_comp: rope.n_comp as u32,
        ..MatmulParams::plain(x.rows(), q_dim + 2 * kv_dim, w[0])
    }
}

/// q = RoPE(x̂ · Wqᵀ + bq), and RoPE(x̂ · Wkᵀ + bk), x̂ · Wvᵀ + bv written into the KV cache at rows
/// `past..past + rows`, where x̂ = RMSNorm(x) (norm weight, biases and frequencies in `aux`).
/// Returns q [rows, heads * head_dim].
pub fn qkv_rope_kv(rec: &mut Recorder, x: &Tensor, aux: &QkvAux, w: [&Weight; 3], out: &QkvOut) -> Result<Tensor> {
    let gpu = rec.gpu;
    let (q_dim, kv_dim) = check_qkv(rec, x, aux, w, out)?;
    let (k, m, n) = (w[0].cols, x.rows(), q_dim + 2 * kv_dim);
    let q = gpu.alloc_act(&[m, q_dim])?;
    let c = choice(gpu.act, w[0].format, k % 4 == 0, false, false, Fused::QkvRope);
    let params = qkv_params(x, aux, w, out);
    let binds = [
        MATMUL.bind("X", x),
        MATMUL.bind_buf("W", &w[0].buf),
        MATMUL.bind_buf("W2", &w[1].buf),
        MATMUL.bind_buf("W3", &w[2].buf),
        MATMUL.bind("Y", &q),
        MATMUL.bind("AUX", &aux.aux),
        MATMUL.bind("POS", out.pos),
        MATMUL.bind("KVC", out.cache),
    ];
    dispatch(rec, c, &params, &binds, n, m);
    Ok(q)
}

/// SiLU(x̂ · Wgᵀ) * (x̂ · Wuᵀ), x̂ = RMSNorm(x) when `norm` is given: Qwen's gate and up
/// projections (no biases) in one pass. Returns [rows, intermediate].
pub fn gate_up_swiglu(rec: &mut Recorder, x: &Tensor, norm: Option<NormIn>, gate: &Weight, up: &Weight) -> Result<Tensor> {
    let gpu = rec.gpu;
    let k = gate.cols;
    check_x(rec, x, k)?;
    check_norm(norm, k)?;
    check_stack(&[gate, up], k)?;
    let inter = gate.rows;
    if up.rows != inter {
        return Err(shape_err("decode gemv", format!("gate has {inter} rows, up {}", up.rows)));
    }
    check_paired(inter, 2 * inter)?;
    let m = x.rows();
    let y = gpu.alloc_act(&[m, inter])?;
    let c = choice(gpu.act, gate.format, k % 4 == 0, false, false, Fused::SwiGlu { norm: norm.is_some() });
    let params = MatmulParams {
        n1: inter as u32,
        n2: (2 * inter) as u32,
        soff2: up.scale_offset,
        soff3: 0,
        half: inter as u32,
        eps: norm.map_or(0.0, |n| n.eps),
        ..MatmulParams::plain(m, 2 * inter, gate)
    };
    let mut binds = vec![MATMUL.bind("X", x), MATMUL.bind_buf("W", &gate.buf), MATMUL.bind_buf("W2", &up.buf), MATMUL.bind_buf("W3", &up.buf), MATMUL.bind("Y", &y)];
    if let Some(nrm) = norm {
        binds.push(MATMUL.bind("G", nrm.weight));
    }
    dispatch(rec, c, &params, &binds, 2 * inter, m);
    Ok(y)
}

/// RMSNorm(x) · Wᵀ (+ bias): a linear layer with its input norm folded in.
pub fn linear_normed(rec: &mut Recorder, x: &Tensor, norm: NormIn, w: &Weight, bias: Option<&Tensor>) -> Result<Tensor> {
    if let Some(b) = bias {
        if b.numel() != w.rows || b.dtype != DType::F32 {
            return Err(shape_err("decode gemv", format!("bias must be {} f32 values", w.rows)));
        }
    }
    normed(rec, x, norm, &[w], bias)
}

/// RMSNorm(x) · Wᵀ for a matrix stored in up to three row parts (the tied lm_head of a large
/// vocabulary): every part in one pass, the logits in one tensor.
pub fn linear_normed_parts(rec: &mut Recorder, x: &Tensor, norm: NormIn, parts: &[Weight]) -> Result<Tensor> {
    if parts.is_empty() || parts.len() > 3 {
        return Err(shape_err("decode gemv", format!("{} row parts; one pass takes one to three", parts.len())));
    }
    normed(rec, x, norm, &parts.iter().collect::<Vec<_>>(), None)
}

fn normed(rec: &mut Recorder, x: &Tensor, norm: NormIn, ws: &[&Weight], bias: Option<&Tensor>) -> Result<Tensor> {
    let gpu = rec.gpu;
    let k = ws[0].cols;
    check_x(rec, x, k)?;
    check_norm(Some(norm), k)?;
    check_stack(ws, k)?;
    let m = x.rows();
    let n: usize = ws.iter().map(|w| w.rows).sum();
    let y = gpu.alloc_act(&[m, n])?;
    let multi = ws.len() > 1;
    let c = choice(gpu.act, ws[0].format, k % 4 == 0, bias.is_some(), false, Fused::NormIn { multi });
    let (w2, w3) = (ws.get(1).unwrap_or(&ws[0]), ws.get(2).or(ws.get(1)).unwrap_or(&ws[0]));
    let n1 = ws[0].rows;
    let n2 = if ws.len() > 2 { n1 + w2.rows } else { n };
    let params = MatmulParams { eps: norm.eps, n1: n1 as u32, n2: n2 as u32, soff2: w2.scale_offset, soff3: w3.scale_offset, ..MatmulParams::plain(m, n, ws[0]) };
    let mut binds = vec![MATMUL.bind("X", x), MATMUL.bind_buf("W", &ws[0].buf), MATMUL.bind("Y", &y), MATMUL.bind("G", norm.weight)];
    if multi {
        binds.push(MATMUL.bind_buf("W2", &w2.buf));
        binds.push(MATMUL.bind_buf("W3", &w3.buf));
    }
    if let Some(b) = bias {
        binds.push(MATMUL.bind("BIASES", b));
    }
    dispatch(rec, c, &params, &binds, n, m);
    Ok(y)
}

/// merge(ranges) · Wᵀ (+ bias) + residual: the attention's output projection reading the
/// attention's unmerged key ranges (so that no merge pass runs), with the residual sum.
pub fn linear_combined(rec: &mut Recorder, r: &Ranges, w: &Weight, bias: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
    let gpu = rec.gpu;
    let k = r.heads * r.head_dim;
    if w.cols != k || k > MAX_STAGED_K || r.heads > MAX_COMBINE_HEADS {
        return Err(shape_err(
            "decode gemv",
            format!("{} heads of {} do not suit a {}x{} weight (at most {MAX_STAGED_K} columns, {MAX_COMBINE_HEADS} heads)", r.heads, r.head_dim, w.rows, w.cols),
        ));
    }
    let m = r.ml.numel() / 2 / (r.heads * r.n_split).max(1);
    if m == 0 || m > GEMV_MAX_ROWS || r.ml.numel() != 2 * m * r.heads * r.n_split || r.part.numel() != m * r.heads * r.n_split * r.head_dim {
        return Err(shape_err("decode gemv", format!("key ranges {:?} / {:?} do not match {} heads x {} ranges", r.part.shape, r.ml.shape, r.heads, r.n_split)));
    }
    check_act("decode gemv", "residual", residual, gpu)?;
    if residual.numel() != m * w.rows {
        return Err(shape_err("decode gemv", format!("residual has {} elements, expected {m}x{}", residual.numel(), w.rows)));
    }
    if let Some(b) = bias {
        if b.numel() != w.rows || b.dtype != DType::F32 {
            return Err(shape_err("decode gemv", format!("bias must be {} f32 values", w.rows)));
        }
    }
    let y = gpu.alloc_act(&[m, w.rows])?;
    let c = choice(gpu.act, w.format, k % 4 == 0, bias.is_some(), true, Fused::Combine);
    let params = MatmulParams { hq: r.heads as u32, hd: r.head_dim as u32, n_split: r.n_split as u32, ..MatmulParams::plain(m, w.rows, w) };
    let mut binds = vec![MATMUL.bind_buf("W", &w.buf), MATMUL.bind("Y", &y), MATMUL.bind("ADDT", residual), MATMUL.bind("PART", r.part), MATMUL.bind("ML", r.ml)];
    if let Some(b) = bias {
        binds.push(MATMUL.bind("BIASES", b));
    }
    dispatch(rec, c, &params, &binds, w.rows, m);
    Ok(y)
}
