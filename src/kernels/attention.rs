//! Scaled dot-product attention, flash-style (online softmax, no score matrix): causal over a KV
//! cache with grouped-query heads, full non-causal, and block-diagonal (varlen) for windows.

use super::{check_act, ACTS, ATTENTION_WGSL};
use crate::gpu::{
    error::shape_err, Contract, DType, Entry, Gpu, Launch, PlainAttention, Recorder, Result, Slot, Tensor, TileSource, UniformParams, Variant, BLOCKED_STORAGE,
};

/// A token-major view: token t, head h, dim d lives at `t * stride + off + h * head_dim + d`
/// (`off` may include whole tokens: the values of a KV cache that holds keys, then values).
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
    /// 64 queries per workgroup, one per thread (prefill, encoders; head dims past `flash_blocked`'s).
    Tile,
    /// 64 queries per workgroup, register-tiled (`flash_blocked`): the default for prefill and the
    /// encoders on the plain path; an error where the head dim or the workgroup memory rules it out.
    Blocked,
    /// `Blocked` in the shape for WebGPU's guaranteed 16 KiB of workgroup memory (what an adapter
    /// that offers no more runs), to test that shape on any adapter.
    BlockedMinStorage,
    /// One query per workgroup (decode).
    Rows,
    /// `flash_tile` on the matrix units (`flash_coop`); an error where the device has none.
    MatrixUnits,
}

crate::uniform_params! {
    pub struct AttentionParams {
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
        /// SPLIT / COMBINE: the keys are cut into n_split ranges of split_len keys.
        split_len: u32,
        n_split: u32,
    }
}

pub static ATTENTION: Contract = Contract {
    src: ATTENTION_WGSL,
    params: AttentionParams::FIELDS,
    slots: &[
        Slot::read("Q", "array<Act>").only(&["flash_tile", "flash_blocked", "flash_rows", "flash_coop"]),
        Slot::read("K", "array<Act>").only(&["flash_tile", "flash_blocked", "flash_rows", "flash_coop"]),
        Slot::read("V", "array<Act>").only(&["flash_tile", "flash_blocked", "flash_rows", "flash_coop"]),
        // A split pass writes partial results, which `flash_combine` merges into O.
        Slot::write("O", "array<Act>").when("!SPLIT"),
        Slot::read("SEG", "array<u32>").when("VARLEN"),
        // Per (query, head, key range): the unnormalised weighted sum of V, and its running max and sum.
        Slot::write("PART", "array<f32>").when("SPLIT|COMBINE"),
        Slot::write("ML", "array<vec2<f32>>").when("SPLIT|COMBINE"),
    ],
    entries: &[
        Entry::new("flash_tile", [64, 1, 1]),
        Entry::new("flash_rows", [128, 1, 1]),
        Entry::new("flash_combine", [128, 1, 1]),
        Entry::per_variant("flash_coop", coop_workgroup),
        Entry::per_variant("flash_blocked", blocked_workgroup),
    ],
};

/// `flash_blocked`'s workgroup: a row group of four queries per CG threads.
fn blocked_workgroup(v: &Variant) -> Option<[u32; 3]> {
    Some([variant_u32(v, "BQ")? / 4 * variant_u32(v, "CG")?, 1, 1])
}

/// A u32 constant of the variant (None where it has none).
fn variant_u32(v: &Variant, name: &str) -> Option<u32> {
    v.consts.get(name).and_then(|s| s.trim_end_matches('u').parse::<u32>().ok())
}

/// `flash_blocked`'s shape for one head dimension and workgroup memory size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockedShape {
    /// Keys per step.
    pub bkv: u32,
    /// Threads per row group of four queries (the output's and the scores' column split).
    pub cg: u32,
    /// Head dims of Q and K staged at a time.
    pub dk: u32,
    /// Keys of V staged at a time.
    pub vk: u32,
}

/// Queries per `flash_blocked` workgroup.
const BLOCKED_QUERIES: u32 = 64;

impl BlockedShape {
    /// The shape for head dim `d` whose workgroup memory fits `storage` bytes: the most keys per
    /// step, then the largest stages. None where `d` is not a multiple of 16 or is past 128: each
    /// thread's share of a row (4 or 8 column threads) is whole vec4s, and its registers hold at
    /// most 20 vec4s of output (heads of 80) and 8 of scores.
    pub fn for_head_dim(d: usize, storage: u32) -> Option<BlockedShape> {
        if d % 16 != 0 || d > MAX_HEAD_DIM_ROWS {
            return None;
        }
        let (d, storage) = (d as u32, storage.min(BLOCKED_STORAGE[1]));
        let cg = if d % 32 == 0 { 8 } else { 4 };
        let rq = BLOCKED_QUERIES / 4;
        // Two vec4s of keys per thread at most: 64 keys with heads of 80 (CG = 4) would take 16
        // vec4s of scores beside the 20 of output.
        [64u32, 32].into_iter().filter(|bkv| bkv / (4 * cg) <= 2).find_map(|bkv| {
            let region = storage.checked_sub(bkv * rq * 16)?;
            let dk = [32u32, 16].into_iter().find(|dk| d % dk == 0 && dk * (rq + bkv / 4) * 16 <= region)?;
            let vk = [bkv, bkv / 2, bkv / 4].into_iter().find(|vk| vk * d * 4 <= region)?;
            (rq * cg * 16 <= region).then_some(BlockedShape { bkv, cg, dk, vk })
        })
    }

    fn threads(&self) -> u32 {
        BLOCKED_QUERIES / 4 * self.cg
    }

    /// The variant's constants: sizes, the shared region in vec4s, staging rounds per thread.
    fn constants(&self, v: Variant, d: u32) -> Variant {
        let rq = BLOCKED_QUERIES / 4;
        let qk = self.dk * (rq + self.bkv / 4);
        let vv = self.vk * d / 4;
        v.constant("HD", d)
            .constant("BQ", BLOCKED_QUERIES)
            .constant("BKV", self.bkv)
            .constant("CG", self.cg)
            .constant("DK", self.dk)
            .constant("VK", self.vk)
            .constant("REG4", qk.max(vv).max(rq * self.cg))
            .constant("STAGE_QK", qk.div_ceil(self.threads()))
            .constant("STAGE_V", vv.div_ceil(self.threads()))
    }
}

/// `flash_coop`'s workgroup: NSG subgroups of COOP_S invocations.
fn coop_workgroup(v: &Variant) -> Option<[u32; 3]> {
    Some([variant_u32(v, "NSG")? * variant_u32(v, "COOP_S")?, 1, 1])
}

/// `flash_coop` on subgroups of `subgroup` invocations for head dimension `d`: (queries per
/// workgroup, subgroups), the most queries whose staged tiles fit `storage` bytes of workgroup
/// memory; None where none fit or `d` is not a multiple of the matrices' 8.
pub fn coop_shape(d: usize, subgroup: u32, storage: u32) -> Option<(u32, u32)> {
    let (d, kv) = (d as u32, COOP_KEYS);
    if d % 8 != 0 || subgroup == 0 {
        return None;
    }
    // Q, K, V and P as f16; S, O and the row factors as f32.
    let bytes = |bq: u32| 2 * (bq * d + 2 * kv * d + bq * kv) + 4 * (bq * kv + bq * d + bq);
    let bq = COOP_QUERIES.into_iter().find(|&bq| bytes(bq) <= storage)?;
    Some((bq, coop_subgroups(bq, subgroup)))
}

/// Subgroups of a `flash_coop` workgroup: one invocation per query row at least, and 64 or more.
fn coop_subgroups(bq: u32, subgroup: u32) -> u32 {
    64u32.max(bq).div_ceil(subgroup).max(1)
}

/// Queries per `flash_coop` workgroup, the larger first.
const COOP_QUERIES: [u32; 2] = [32, 16];

/// Keys per step of `flash_coop`.
const COOP_KEYS: u32 = 32;

/// The largest head dimension the kernels take (`flash_rows` and `flash_combine`: one thread per
/// dimension; `flash_tile`: per-thread query and accumulator arrays).
pub const MAX_HEAD_DIM_ROWS: usize = 128;
pub const MAX_HEAD_DIM_TILE: usize = 256;

/// What selects an attention pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionChoice {
    pub act: DType,
    /// `flash_rows` (decode) rather than `flash_tile`.
    pub rows: bool,
    /// `flash_rows` over one range of the keys (merged by `combine_choice`).
    pub split: bool,
    pub varlen: bool,
    pub head_dim: u32,
    /// `flash_coop`: (subgroup size, queries per workgroup, subgroups); None for the others.
    pub coop: Option<(u32, u32, u32)>,
    /// `flash_blocked`'s shape; None for the others.
    pub blocked: Option<BlockedShape>,
}

impl AttentionChoice {
    pub fn launch(self) -> Launch {
        if let Some((subgroup, bq, nsg)) = self.coop {
            let variant = Variant::new(self.act)
                .flag("COOP")
                .flag_if(self.varlen, "VARLEN")
                .constant("HD", self.head_dim)
                .constant("BQ", bq)
                .constant("BKV", COOP_KEYS)
                .constant("NSG", nsg)
                .constant("COOP_S", subgroup);
            return Launch::new(&ATTENTION, "flash_coop", variant);
        }
        if let Some(shape) = self.blocked {
            let variant = Variant::new(self.act).flag("BLOCKED").flag_if(self.varlen, "VARLEN");
            return Launch::new(&ATTENTION, "flash_blocked", shape.constants(variant, self.head_dim));
        }
        let entry = if self.rows { "flash_rows" } else { "flash_tile" };
        let d = self.head_dim;
        let kv = kv_tile_keys(d as usize) as u32;
        let variant = Variant::new(self.act)
            .flag(if self.rows { "ROWS" } else { "TILE" })
            .flag_if(self.split, "SPLIT")
            .flag_if(self.rows, "REDUCE")
            .constant("RED_N", ATTENTION.entry("flash_rows").threads())
            .flag_if(self.varlen, "VARLEN")
            .constant("HD", d)
            .constant("BKV", kv)
            .constant("KV_TILE", kv * d);
        Launch::new(&ATTENTION, entry, variant)
    }
}

/// The pass that merges the key ranges of a split decode step.
pub fn combine_choice(act: DType, head_dim: u32) -> Launch {
    Launch::new(&ATTENTION, "flash_combine", Variant::new(act).flag("COMBINE").constant("HD", head_dim))
}

/// Every variant `attention_with` can produce: both kernels, split or not, varlen or not, every
/// head dimension (a multiple of 4 up to the kernel's maximum).
pub fn launches() -> Vec<Launch> {
    let mut out = Vec::new();
    for act in ACTS {
        for head_dim in (4..=MAX_HEAD_DIM_TILE as u32).step_by(4) {
            let small = head_dim as usize <= MAX_HEAD_DIM_ROWS;
            for varlen in [false, true] {
                let plain = AttentionChoice { act, rows: false, split: false, varlen, head_dim, coop: None, blocked: None };
                out.push(plain.launch());
                if small {
                    for split in [false, true] {
                        out.push(AttentionChoice { rows: true, split, ..plain }.launch());
                    }
                }
                let mut shapes: Vec<BlockedShape> = BLOCKED_STORAGE.iter().filter_map(|&b| BlockedShape::for_head_dim(head_dim as usize, b)).collect();
                shapes.dedup();
                for blocked in shapes {
                    out.push(AttentionChoice { blocked: Some(blocked), ..plain }.launch());
                }
                // On matrix units (f16 path), for today's fixed subgroup sizes (`GemmTile::all_for`).
                if act == DType::F16 && head_dim % 8 == 0 {
                    for subgroup in [8, 32] {
                        for bq in COOP_QUERIES {
                            let coop = Some((subgroup, bq, coop_subgroups(bq, subgroup)));
                            out.push(AttentionChoice { coop, ..plain }.launch());
                        }
                    }
                }
            }
            if small {
                out.push(combine_choice(act, head_dim));
            }
        }
    }
    out
}

/// Output [q.tokens, q.heads * head_dim].
pub fn attention(rec: &mut Recorder, a: &Attention) -> Result<Tensor> {
    attention_with(rec, a, Kernel::Auto)
}

pub fn attention_with(rec: &mut Recorder, a: &Attention, kernel: Kernel) -> Result<Tensor> {
    match attention_out(rec, a, kernel)? {
        AttentionOut::Done(o) => Ok(o),
        AttentionOut::Ranges { part, ml, n_split } => {
            let gpu = rec.gpu;
            let out = gpu.alloc_act(&[a.q.tokens, a.q.heads * a.head_dim])?;
            let p = AttentionParams { n_split: n_split as u32, ..params(a, 0, 0, 0) };
            let combine = combine_choice(gpu.act, a.head_dim as u32);
            let binds = [ATTENTION.bind("O", &out), ATTENTION.bind("PART", &part), ATTENTION.bind("ML", &ml)];
            rec.dispatch_flat(combine.pipeline(gpu), &p, &binds, (a.q.tokens * a.q.heads) as u32);
            Ok(out)
        }
    }
}

/// The attention's output, or for a decode step over a long cache its key ranges' partial results
/// (flash-decoding), to be merged by `flash_combine` or by the next matmul's prologue
/// (`decode::linear_combined`).
pub enum AttentionOut {
    Done(Tensor),
    /// Per (query, head, range): the unnormalised weighted sum of V [.., head_dim] and the
    /// (max, sum) of its scores.
    Ranges {
        part: Tensor,
        ml: Tensor,
        n_split: usize,
    },
}

/// `attention`, leaving a split decode step's ranges unmerged.
pub fn attention_ranges(rec: &mut Recorder, a: &Attention) -> Result<AttentionOut> {
    attention_out(rec, a, Kernel::Auto)
}

fn params(a: &Attention, n_seg: usize, split_len: usize, n_split: usize) -> AttentionParams {
    AttentionParams {
        n_q: a.q.tokens as u32,
        n_kv: a.k.tokens as u32,
        hq: a.q.heads as u32,
        hkv: a.k.heads as u32,
        q_stride: a.q.stride as u32,
        k_stride: a.k.stride as u32,
        v_stride: a.v.stride as u32,
        o_stride: (a.q.heads * a.head_dim) as u32,
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
    }
}

fn attention_out(rec: &mut Recorder, a: &Attention, kernel: Kernel) -> Result<AttentionOut> {
    let gpu = rec.gpu;
    let d = a.head_dim;
    for (name, v) in [("Q", &a.q), ("K", &a.k), ("V", &a.v)] {
        check_act("attention", name, v.t, gpu)?;
        let need = if v.tokens == 0 { 0 } else { (v.tokens - 1) * v.stride + v.off + v.heads * d };
        // A view may start some whole tokens into its tensor (a KV cache's values).
        if need > v.t.numel() || v.off % v.stride.max(1) + v.heads * d > v.stride {
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
        Kernel::Tile | Kernel::Blocked | Kernel::BlockedMinStorage | Kernel::MatrixUnits => false,
    };
    // The tile kernel on matrix units where the device runs the GEMM there and the shape fits.
    let coop = match gpu.coop_tile() {
        Some(t) if !rows && matches!(kernel, Kernel::Auto | Kernel::MatrixUnits) => {
            coop_shape(d, t.coop, gpu.limits.max_compute_workgroup_storage_size).map(|(bq, nsg)| (t.coop, bq, nsg))
        }
        _ => None,
    };
    if kernel == Kernel::MatrixUnits && coop.is_none() {
        let why = gpu.coop_unavailable().unwrap_or_else(|| format!("head dim {d} is not a multiple of 8 or its tiles do not fit"));
        return Err(shape_err("attention", format!("no attention on matrix units here: {why}")));
    }
    if d % 4 != 0 {
        return Err(shape_err("attention", format!("head dim {d} must be a multiple of 4")));
    }
    // The register-tiled kernel wherever its shape fits, the one-query-per-thread tile elsewhere.
    let mut storage = gpu.limits.max_compute_workgroup_storage_size;
    if kernel == Kernel::BlockedMinStorage {
        storage = storage.min(BLOCKED_STORAGE[0]);
    }
    let blocked = match kernel {
        // The device's plain kernel (measured at its first start, `attention_tune`).
        Kernel::Auto if !rows && coop.is_none() => match gpu.attention_kernel() {
            PlainAttention::Blocked { storage: s } => BlockedShape::for_head_dim(d, s.min(storage)),
            PlainAttention::Tile => None,
        },
        Kernel::Blocked | Kernel::BlockedMinStorage => Some(BlockedShape::for_head_dim(d, storage).ok_or_else(|| {
            shape_err(
                "attention",
                format!("head dim {d} does not fit the register-tiled kernel (a multiple of 4 up to {MAX_HEAD_DIM_ROWS}, in {storage} bytes of workgroup memory)"),
            )
        })?),
        _ => None,
    };
    if rows && d > MAX_HEAD_DIM_ROWS {
        return Err(shape_err("attention", format!("head dim {d} > {MAX_HEAD_DIM_ROWS} is not supported by the decode kernel")));
    }
    if d > MAX_HEAD_DIM_TILE {
        return Err(shape_err("attention", format!("head dim {d} > {MAX_HEAD_DIM_TILE} is not supported")));
    }
    // Decode over a long cache: one workgroup per (query, head) would leave most of a GPU idle,
    // so the keys are cut into ranges of SPLIT_KEYS or more, merged afterwards.
    let n_split = if rows && a.q.tokens * a.q.heads < SPLIT_MAX_WORKGROUPS { a.k.tokens.div_ceil(SPLIT_KEYS).min(MAX_SPLITS) } else { 1 };
    let split_len = a.k.tokens.div_ceil(n_split);
    let launch = AttentionChoice { act: gpu.act, rows, split: n_split > 1, varlen: a.segments.is_some(), head_dim: d as u32, coop, blocked }.launch();
    let pipe = launch.pipeline(gpu);
    let p = params(a, n_seg, split_len, n_split);
    let mut binds = vec![ATTENTION.bind("Q", a.q.t), ATTENTION.bind("K", a.k.t), ATTENTION.bind("V", a.v.t)];
    if let Some(s) = a.segments {
        binds.push(ATTENTION.bind("SEG", s));
    }
    if n_split > 1 {
        let slots = a.q.tokens * a.q.heads * n_split;
        let part = gpu.alloc(&[slots, d], DType::F32)?;
        let ml = gpu.alloc(&[slots, 2], DType::F32)?;
        // The first pass writes partial results, not O.
        binds.push(ATTENTION.bind("PART", &part));
        binds.push(ATTENTION.bind("ML", &ml));
        rec.dispatch_flat(pipe, &p, &binds, slots as u32);
        return Ok(AttentionOut::Ranges { part, ml, n_split });
    }
    let out = gpu.alloc_act(&[a.q.tokens, a.q.heads * d])?;
    binds.push(ATTENTION.bind("O", &out));
    if rows {
        rec.dispatch_flat(pipe, &p, &binds, (a.q.tokens * a.q.heads) as u32);
    } else if let Some((_, bq, _)) = coop {
        rec.dispatch(pipe, &p, &binds, [(a.q.tokens as u32).div_ceil(bq), a.q.heads as u32, 1]);
    } else if blocked.is_some() {
        rec.dispatch(pipe, &p, &binds, [(a.q.tokens as u32).div_ceil(BLOCKED_QUERIES), a.q.heads as u32, 1]);
    } else {
        let bq = launch.entry().threads(); // one query per thread
        rec.dispatch(pipe, &p, &binds, [(a.q.tokens as u32).div_ceil(bq), a.q.heads as u32, 1]);
    }
    Ok(AttentionOut::Done(out))
}

/// The kernel prefill and the encoders' attention runs on this device, and why (for `info` and
/// the bench headers).
pub fn encoder_kernel(gpu: &Gpu) -> String {
    if gpu.coop_tile().is_some() {
        return "flash_coop, on the matrix units".to_string();
    }
    let pick = gpu.attention_pick();
    let how = match pick.source {
        TileSource::Measured | TileSource::Remembered => {
            let ms: Vec<String> = pick.timings.iter().map(|(k, ms)| format!("{k} {ms:.2} ms")).collect();
            if ms.is_empty() {
                "measured on an earlier start".to_string()
            } else {
                format!("measured on {} tokens: {}", pick.tokens, ms.join(", "))
            }
        }
        TileSource::Env => "set by SPATIAL_MLLM_ATTENTION".to_string(),
        TileSource::Pinned => "pinned".to_string(),
        TileSource::Default | TileSource::MatrixUnits => "the default, not measured".to_string(),
    };
    match pick.kernel {
        PlainAttention::Tile => format!("flash_tile, one query per thread ({how})"),
        PlainAttention::Blocked { storage } => {
            let keys = BlockedShape::for_head_dim(64, storage).map_or(0, |s| s.bkv);
            format!(
                "flash_blocked, register-tiled, {keys} keys a step at heads of 64 in {} KiB of workgroup memory; flash_tile for head dims not a multiple of 16 ({how})",
                storage >> 10
            )
        }
    }
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
