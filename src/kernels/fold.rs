//! A decode layer in four dispatches: the attention folded into the q/k/v pass. That pass's first
//! workgroups compute k and v (RMSNorm, bias, M-RoPE, the cache write) as `decode::qkv_rope_kv`
//! does; each later one takes one query head and one range of the keys cached before this step,
//! computes that head's q rows itself, and leaves the range's partial attention. The o projection
//! merges the ranges with this step's own keys (which the same pass wrote, so no workgroup of it
//! could read them) in its prologue. A dispatch fewer than `decode` per layer, at the price of
//! W_q read once per key range (`fold_ranges`) and of the last bit: this step's keys join the
//! softmax last, so the result is not the separate kernels' to the bit (tests/decode_fused.rs
//! bounds the difference).

use super::decode::{check_qkv, choice, dispatch, qkv_params, QkvAux, QkvOut};
use super::matmul::{Fused, MatmulParams, MATMUL};
use crate::gpu::{error::shape_err, DType, Launch, Recorder, Result, Tensor};
use crate::weights::{Weight, WeightFormat};

/// Keys per range of the folded attention, at least; and the most ranges. Each range re-reads
/// W_q's rows of its head (about 4 % of a 3B layer's bytes for a second range), so short contexts
/// (the benchmark's 160 tokens) take one range and read each weight once; long ones (a video's
/// 3 000 tokens) split so that more workgroups share the keys, as flash-decoding does.
pub const FOLD_RANGE_KEYS: usize = 1024;
pub const FOLD_MAX_RANGES: usize = 4;
/// Widest head the pass holds (`qraw` in shaders/matmul.wgsl) and most query heads the merge
/// keeps this step's keys for (`NEW_KEYS` x heads within the GEMV's 256 reduction slots).
pub const FOLD_MAX_HEAD_DIM: usize = 128;
pub const FOLD_MAX_HEADS: usize = 64;

/// Key ranges of the folded attention over `past` cached keys.
pub fn fold_ranges(past: usize) -> usize {
    past.div_ceil(FOLD_RANGE_KEYS).clamp(1, FOLD_MAX_RANGES)
}

/// Whether a model of these heads can decode folded.
pub fn fold_fits(heads: usize, head_dim: usize) -> bool {
    heads <= FOLD_MAX_HEADS && head_dim <= FOLD_MAX_HEAD_DIM && head_dim % 8 == 0
}

/// The folded pass's output for `rows` rows: per (row, head, range) the unnormalised weighted sum
/// of V [head_dim], then the ranges' (max, sum) pairs from `ml_off`, then q [rows, q_dim] from
/// `q_off` (f32 holding activation-typed values), all in one f32 buffer (WebGPU guarantees 8
/// storage buffers per stage, and the pass reads 7 others).
pub struct Folded {
    pub buf: Tensor,
    pub n_split: usize,
    pub rows: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ml_off: usize,
    pub q_off: usize,
    /// The scores' scale, 1 / sqrt(head_dim), the same in both passes.
    pub scale: f32,
    /// The layer's cache, values from `v_base`, `past` keys before this step's.
    pub cache: Tensor,
    pub v_base: usize,
    pub past: usize,
}

/// Every variant the launchers below can produce.
pub fn launches() -> Vec<Launch> {
    let mut out = Vec::new();
    for act in super::ACTS {
        for format in [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4] {
            for k4 in [false, true] {
                out.push(choice(act, format, k4, false, false, Fused::QkvAttend).launch());
                for bias in [false, true] {
                    out.push(choice(act, format, k4, bias, true, Fused::MergeNew).launch());
                }
            }
        }
    }
    out
}

/// RMSNorm, k and v (bias, M-RoPE) into the cache at rows `past..past + rows`, and per query head
/// the attention of q = RoPE(x̂ · Wqᵀ + bq) over the keys cached before, in `fold_ranges(past)`
/// ranges; `linear_merged` finishes it.
pub fn qkv_attend(rec: &mut Recorder, x: &Tensor, aux: &QkvAux, w: [&Weight; 3], out: &QkvOut) -> Result<Folded> {
    let gpu = rec.gpu;
    let (q_dim, kv_dim) = check_qkv(rec, x, aux, w, out)?;
    let hd = out.rope.head_dim;
    if !fold_fits(out.heads, hd) || out.kv_heads == 0 || out.heads % out.kv_heads != 0 {
        return Err(shape_err(
            "folded attention",
            format!(
                "{} / {} heads of {hd}: at most {FOLD_MAX_HEADS} query heads, a multiple of the kv heads, of at most {FOLD_MAX_HEAD_DIM}, a multiple of 8",
                out.heads, out.kv_heads
            ),
        ));
    }
    let (k, m) = (w[0].cols, x.rows());
    let n_split = fold_ranges(out.past);
    let slots = m * out.heads * n_split;
    let (ml_off, q_off) = (slots * hd, slots * (hd + 2));
    let buf = gpu.alloc(&[q_off + m * q_dim], DType::F32)?;
    let scale = 1.0 / (hd as f32).sqrt();
    let params = MatmulParams {
        hq: out.heads as u32,
        hd: hd as u32,
        n_split: n_split as u32,
        scale,
        split_len: out.past.div_ceil(n_split) as u32,
        ml_off: ml_off as u32,
        q_off: q_off as u32,
        ..qkv_params(x, aux, w, out)
    };
    let binds = [
        MATMUL.bind("X", x),
        MATMUL.bind_buf("W", &w[0].buf),
        MATMUL.bind_buf("W2", &w[1].buf),
        MATMUL.bind_buf("W3", &w[2].buf),
        MATMUL.bind("AUX", &aux.aux),
        MATMUL.bind("POS", out.pos),
        MATMUL.bind("KVC", out.cache),
        MATMUL.bind("FOLDED", &buf),
    ];
    // k | v in workgroups of 8 rows, then one workgroup per (head, range).
    let c = choice(gpu.act, w[0].format, k % 4 == 0, false, false, Fused::QkvAttend);
    let launch = c.launch();
    let rows = launch.workgroup()[1] as usize;
    dispatch(rec, c, &params, &binds, 2 * kv_dim + out.heads * n_split * rows, m);
    Ok(Folded {
        buf,
        n_split,
        rows: m,
        heads: out.heads,
        kv_heads: out.kv_heads,
        head_dim: hd,
        ml_off,
        q_off,
        scale,
        cache: out.cache.clone(),
        v_base: out.v_base,
        past: out.past,
    })
}

/// attention(f) · Wᵀ (+ bias) + residual: the o projection merging the folded pass's key ranges
/// with this step's keys in its prologue, and the residual sum.
pub fn linear_merged(rec: &mut Recorder, f: &Folded, w: &Weight, bias: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
    let gpu = rec.gpu;
    let k = f.heads * f.head_dim;
    if w.cols != k || k > super::decode::MAX_STAGED_K {
        return Err(shape_err("folded attention", format!("{} heads of {} do not suit a {}x{} weight", f.heads, f.head_dim, w.rows, w.cols)));
    }
    check_act_rows(rec, residual, f.rows, w.rows)?;
    if let Some(b) = bias {
        if b.numel() != w.rows || b.dtype != DType::F32 {
            return Err(shape_err("folded attention", format!("bias must be {} f32 values", w.rows)));
        }
    }
    let m = f.rows;
    let y = gpu.alloc_act(&[m, w.rows])?;
    let c = choice(gpu.act, w.format, k % 4 == 0, bias.is_some(), true, Fused::MergeNew);
    let params = MatmulParams {
        hq: f.heads as u32,
        hd: f.head_dim as u32,
        n_split: f.n_split as u32,
        scale: f.scale,
        ml_off: f.ml_off as u32,
        q_off: f.q_off as u32,
        q_dim: k as u32,
        kv_dim: (f.kv_heads * f.head_dim) as u32,
        past: f.past as u32,
        v_base: f.v_base as u32,
        ..MatmulParams::plain(m, w.rows, w)
    };
    let mut binds =
        vec![MATMUL.bind_buf("W", &w.buf), MATMUL.bind("Y", &y), MATMUL.bind("ADDT", residual), MATMUL.bind("FOLDED", &f.buf), MATMUL.bind("KVC", &f.cache)];
    if let Some(b) = bias {
        binds.push(MATMUL.bind("BIASES", b));
    }
    dispatch(rec, c, &params, &binds, w.rows, m);
    Ok(y)
}

fn check_act_rows(rec: &Recorder, residual: &Tensor, m: usize, n: usize) -> Result<()> {
    super::check_act("folded attention", "residual", residual, rec.gpu)?;
    if residual.numel() != m * n {
        return Err(shape_err("folded attention", format!("residual has {} elements, expected {m}x{n}", residual.numel())));
    }
    Ok(())
}
