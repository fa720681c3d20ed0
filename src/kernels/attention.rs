//! Scaled dot-product attention, flash-style (online softmax, no score matrix): causal over a KV
//! cache with grouped-query heads, full non-causal, and block-diagonal (varlen) for windows.

use bytemuck::{Pod, Zeroable};

use super::{check_act, ATTENTION};
use crate::gpu::{error::shape_err, Binding, DType, PipelineKey, Recorder, Result, Tensor, Variant};

/// A token-major view: token t, head h, dim d lives at `t * stride + off + h * head_dim + d`.
#[derive(Clone, Copy)]
pub struct HeadsView<'a> {
    pub t: &'a Tensor,
    pub tokens: usize,
    pub heads: usize,
    pub stride: usize,
    pub off: usize,
}

impl<'a> HeadsView<'a> {
    /// A plain [tokens, heads * head_dim] tensor.
    pub fn dense(t: &'a Tensor, heads: usize) -> Self {
        HeadsView { t, tokens: t.rows(), heads, stride: t.cols(), off: 0 }
    }
}

#[derive(Clone, Copy)]
pub struct Attention<'a> {
    pub q: HeadsView<'a>,
    pub k: HeadsView<'a>,
    pub v: HeadsView<'a>,
    pub head_dim: usize,
    /// Causal mask: key j visible to query i when j <= q_pos0 + i.
    pub causal: bool,
    /// Absolute position of query 0 among the keys (KV-cache length before this step).
    pub q_pos0: usize,
    /// Block-diagonal mask: cumulative segment starts [0, .., tokens] (U32), as `cu_seqlens`.
    pub segments: Option<&'a Tensor>,
    pub scale: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Auto,
    /// 64 queries per workgroup (prefill, encoders).
    Tile,
    /// One query per workgroup (decode).
    Rows,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n_q: u32,
    n_kv: u32,
    hq: u32,
    hkv: u32,
    q_stride: u32,
    k_stride: u32,
    v_stride: u32,
    o_stride: u32,
    q_off: u32,
    k_off: u32,
    v_off: u32,
    o_off: u32,
    causal: u32,
    q_pos0: u32,
    n_seg: u32,
    scale: f32,
    split_len: u32,
    n_split: u32,
    _p: [u32; 2],
}

/// Output [q.tokens, q.heads * head_dim].
pub fn attention(rec: &mut Recorder, a: &Attention) -> Result<Tensor> {
    attention_with(rec, a, Kernel::Auto)
}

pub fn attention_with(rec: &mut Recorder, a: &Attention, kernel: Kernel) -> Result<Tensor> {
    let gpu = rec.gpu;
    let d = a.head_dim;
    for (name, v) in [("Q", &a.q), ("K", &a.k), ("V", &a.v)] {
        check_act("attention", name, v.t, gpu)?;
        let need = if v.tokens == 0 { 0 } else { (v.tokens - 1) * v.stride + v.off + v.heads * d };
        if need > v.t.numel() || v.off + v.heads * d > v.stride {
            return Err(shape_err(
                "attention",
                format!(
                    "{name} view ({} tokens x {} heads x {d}, stride {}, offset {}) does not fit its tensor of {} elements",
                    v.tokens,
                    v.heads,
                    v.stride,
                    v.off,
                    v.t.numel()
                ),
            ));
        }
    }
    if a.k.tokens != a.v.tokens || a.k.heads != a.v.heads {
        return Err(shape_err("attention", "K and V disagree in tokens or heads"));
    }
    if a.k.heads == 0 || a.q.heads % a.k.heads != 0 {
        return Err(shape_err("attention", format!("{} query heads are not a multiple of {} kv heads", a.q.heads, a.k.heads)));
    }
    if a.q.tokens == 0 || a.k.tokens == 0 {
        return Err(shape_err("attention", "empty query or key sequence"));
    }
    if a.causal && a.q_pos0 + a.q.tokens > a.k.tokens {
        return Err(shape_err("attention", format!("causal: queries at {}..{} need that many keys, have {}", a.q_pos0, a.q_pos0 + a.q.tokens, a.k.tokens)));
    }
    let n_seg = match a.segments {
        Some(s) => {
            if s.dtype != DType::U32 || s.numel() < 2 {
                return Err(shape_err("attention", "segments must be U32 cumulative starts [0, .., n]"));
            }
            if a.q.tokens != a.k.tokens {
                return Err(shape_err("attention", "block-diagonal attention needs as many queries as keys"));
            }
            s.numel() - 1
        }
        None => 0,
    };
    let rows = match kernel {
        Kernel::Auto => a.q.tokens <= 4,
        Kernel::Rows => true,
        Kernel::Tile => false,
    };
    if d % 4 != 0 {
        return Err(shape_err("attention", format!("head dim {d} must be a multiple of 4")));
    }
    if rows && d > 128 {
        return Err(shape_err("attention", format!("head dim {d} > 128 is not supported by the decode kernel")));
    }
    let out = gpu.alloc_act(&[a.q.tokens, a.q.heads * d])?;
    // Decode over a long cache: one workgroup per (query, head) would leave most of a GPU idle,
    // so the keys are cut into ranges of SPLIT_KEYS or more, merged by `flash_combine`.
    let n_split = if rows && a.q.tokens * a.q.heads < SPLIT_MAX_WORKGROUPS { a.k.tokens.div_ceil(SPLIT_KEYS).min(MAX_SPLITS) } else { 1 };
    let split_len = a.k.tokens.div_ceil(n_split);
    let variant = Variant::new(gpu.act)
        .flag(if rows { "ROWS" } else { "TILE" })
        .flag_if(n_split > 1, "SPLIT")
        .flag_if(rows, "REDUCE")
        .constant("RED_N", 128)
        .flag_if(a.segments.is_some(), "VARLEN")
        .constant("HD", d as u32)
        .constant("BKV", kv_tile_keys(d) as u32)
        .constant("KV_TILE", (kv_tile_keys(d) * d) as u32);
    let entry = if rows { "flash_rows" } else { "flash_tile" };
    let pipe = gpu.pipeline(PipelineKey { src: &ATTENTION, entry, variant: &variant });
    let p = Params {
        n_q: a.q.tokens as u32,
        n_kv: a.k.tokens as u32,
        hq: a.q.heads as u32,
        hkv: a.k.heads as u32,
        q_stride: a.q.stride as u32,
        k_stride: a.k.stride as u32,
        v_stride: a.v.stride as u32,
        o_stride: (a.q.heads * d) as u32,
        q_off: a.q.off as u32,
        k_off: a.k.off as u32,
        v_off: a.v.off as u32,
        o_off: 0,
        causal: a.causal as u32,
        q_pos0: a.q_pos0 as u32,
        n_seg: n_seg as u32,
        scale: a.scale,
        split_len: split_len as u32,
        n_split: n_split as u32,
        _p: [0; 2],
    };
    let mut binds = vec![Binding::t(1, a.q.t), Binding::t(2, a.k.t), Binding::t(3, a.v.t), Binding::t(4, &out)];
    if let Some(s) = a.segments {
        binds.push(Binding::t(5, s));
    }
    if n_split > 1 {
        let slots = a.q.tokens * a.q.heads * n_split;
        let part = gpu.alloc(&[slots, d], DType::F32)?;
        let ml = gpu.alloc(&[slots, 2], DType::F32)?;
        binds.retain(|b| b.0 != 4); // the first pass writes partial results, not O
        binds.push(Binding::t(6, &part));
        binds.push(Binding::t(7, &ml));
        rec.dispatch_flat(pipe, &p, &binds, slots as u32);
        let combine = Variant::new(gpu.act).flag("COMBINE").constant("HD", d as u32);
        let pipe = gpu.pipeline(PipelineKey { src: &ATTENTION, entry: "flash_combine", variant: &combine });
        let binds = [Binding::t(4, &out), Binding::t(6, &part), Binding::t(7, &ml)];
        rec.dispatch_flat(pipe, &p, &binds, (a.q.tokens * a.q.heads) as u32);
    } else if rows {
        rec.dispatch_flat(pipe, &p, &binds, (a.q.tokens * a.q.heads) as u32);
    } else {
        rec.dispatch(pipe, &p, &binds, [(a.q.tokens as u32).div_ceil(64), a.q.heads as u32, 1]);
    }
    Ok(out)
}

/// Split a decode step's keys when fewer (query, head) pairs than this would run.
const SPLIT_MAX_WORKGROUPS: usize = 256;
/// Keys per range of a split decode step, at least; and the most ranges.
const SPLIT_KEYS: usize = 256;
const MAX_SPLITS: usize = 64;

/// Keys per K/V tile of `flash_tile`: 2048 values of K and of V (16 KiB as f32, both), rounded
/// down to the four keys the kernel takes at a time.
fn kv_tile_keys(d: usize) -> usize {
    ((2048 / d) & !3).max(4)
}
