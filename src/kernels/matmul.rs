//! Linear layers: Y = X · Wᵀ (+ bias) with a fused epilogue. Many rows go to the tiled GEMM (the
//! core shared with conv, shaders/gemm_core.wgsl, at the device's `Gpu::gemm_tile`), up to
//! `GEMV_MAX_ROWS` rows (decode) to the split-K GEMV.

use super::{check_act, ACTS, GEMM_ENTRY, MATMUL_WGSL};
use crate::gpu::{error::shape_err, Contract, DType, Entry, GemmTile, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};
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

crate::uniform_params! {
    /// M, N, K: the GEMM core's sizes (named as it reads them).
    #[allow(non_snake_case)]
    pub struct MatmulParams {
        M: u32,
        N: u32,
        K: u32,
        /// Weight row length, padded to 32.
        kp: u32,
        /// Where the q8 / q4 scales start in the packed weight (words).
        soff: u32,
        // The fused decode GEMVs (src/kernels/decode.rs); zero elsewhere.
        /// W_MULTI: the first rows of W2 and of W3, and their scale offsets.
        n1: u32,
        n2: u32,
        soff2: u32,
        soff3: u32,
        /// PAIRED: rows j and j + half meet in one workgroup (within blocks of 2 * half rows).
        half: u32,
        /// NORM_IN: the RMSNorm's epsilon.
        eps: f32,
        /// ROPE_KV: q and kv widths, cache rows already written, where the values start in the
        /// cache, M-RoPE sections and components.
        q_dim: u32,
        kv_dim: u32,
        past: u32,
        v_base: u32,
        sec0: u32,
        sec1: u32,
        n_comp: u32,
        /// COMBINE: query heads, head dim, key ranges.
        hq: u32,
        hd: u32,
        n_split: u32,
        /// FOLD / FOLD_MERGE: the attention's scale, keys per range, where the (max, sum) pairs
        /// and the rotated q start in FOLDED.
        scale: f32,
        split_len: u32,
        ml_off: u32,
        q_off: u32,
    }
}

pub static MATMUL: Contract = Contract {
    src: MATMUL_WGSL,
    params: MatmulParams::FIELDS,
    slots: &[
        // `ActX`: Act, or Act4 with X4 (aliased in the WGSL).
        Slot::read("X", "array<ActX>").when("!COMBINE|FOLD_MERGE"),
        // `Words`: u32, or vec4<u32> with W4 (aliased in the WGSL); W2 and W3 alike.
        Slot::read("W", "array<Words>"),
        // The folded q/k/v pass leaves everything in FOLDED and the cache.
        Slot::write("Y", "array<Act>").when("!FOLD"),
        Slot::read("BIASES", "array<f32>").when("BIAS"),
        Slot::read("MULT", "array<Act>").when("MUL"),
        Slot::read("ADDT", "array<Act>").when("ADD"),
        Slot::read("G", "array<f32>").when("NORM_IN"),
        Slot::read("W2", "array<Words>").when("W_MULTI"),
        Slot::read("W3", "array<Words>").when("W_MULTI"),
        Slot::read("AUX", "array<f32>").when("ROPE_KV"),
        Slot::read("POS", "array<i32>").when("ROPE_KV"),
        Slot::read("KVC", "array<Act>").write_if("ROPE_KV").when("ROPE_KV|FOLD_MERGE"),
        Slot::read("PART", "array<f32>").when("COMBINE"),
        Slot::read("ML", "array<vec2<f32>>").when("COMBINE"),
        // Per (row, head, key range) the partial sums [head_dim], then their (max, sum), then q.
        Slot::read("FOLDED", "array<f32>").write_if("FOLD").when("FOLD|FOLD_MERGE"),
    ],
    entries: &[Entry::new("gemv", [32, 8, 1]), GEMM_ENTRY],
};

impl MatmulParams {
    /// The sizes of X [m, w.cols] · Wᵀ, the fused decode fields zero.
    pub fn plain(m: usize, n: usize, w: &Weight) -> MatmulParams {
        MatmulParams {
            M: m as u32,
            N: n as u32,
            K: w.cols as u32,
            kp: w.padded_cols() as u32,
            soff: w.scale_offset,
            n1: 0,
            n2: 0,
            soff2: 0,
            soff3: 0,
            half: 0,
            eps: 0.0,
            q_dim: 0,
            kv_dim: 0,
            past: 0,
            v_base: 0,
            sec0: 0,
            sec1: 0,
            n_comp: 0,
            hq: 0,
            hd: 0,
            n_split: 0,
            scale: 0.0,
            split_len: 0,
            ml_off: 0,
            q_off: 0,
        }
    }
}

/// What selects a matmul variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulChoice {
    pub act: DType,
    /// The split-K GEMV rather than the tiled GEMM.
    pub gemv: bool,
    pub format: WeightFormat,
    pub bias: bool,
    pub activation: Activation,
    pub mul: bool,
    pub add: bool,
    /// K is a multiple of 4 (X read as vec4s where the path does so).
    pub k4: bool,
    /// The GEMM's tiling (ignored by the GEMV).
    pub tile: GemmTile,
    /// The fused decode GEMVs' prologue and output (GEMV only; see `decode`).
    pub fused: Fused,
}

/// What a decode GEMV fuses around the dot products (src/kernels/decode.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fused {
    None,
    /// RMSNorm of X in the prologue; the plain epilogue; with `multi`, rows from up to three
    /// matrices (a table stored in row parts, such as the lm_head).
    NormIn {
        multi: bool,
    },
    /// The attention's key ranges merged into X in the prologue; the plain epilogue.
    Combine,
    /// RMSNorm, q | k | v from three matrices, + bias, M-RoPE, k and v into the KV cache.
    QkvRope,
    /// [RMSNorm,] SiLU(gate) * up from two matrices.
    SwiGlu {
        norm: bool,
    },
    /// `QkvRope` for k and v, the attention over the cached keys in place of q (src/kernels/fold.rs).
    QkvAttend,
    /// The folded pass's key ranges and this step's keys merged into X in the prologue.
    MergeNew,
}

impl Fused {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Fused::None => &[],
            Fused::NormIn { multi: false } => &["NORM_IN"],
            Fused::NormIn { multi: true } => &["NORM_IN", "W_MULTI"],
            Fused::Combine => &["COMBINE"],
            Fused::QkvRope => &["PAIRED", "W_MULTI", "ROPE_KV"],
            Fused::SwiGlu { norm: true } => &["NORM_IN", "PAIRED", "W_MULTI", "SWIGLU"],
            Fused::SwiGlu { norm: false } => &["PAIRED", "W_MULTI", "SWIGLU"],
            Fused::QkvAttend => &["PAIRED", "W_MULTI", "ROPE_KV", "FOLD", "REDUCE"],
            Fused::MergeNew => &["FOLD_MERGE"],
        }
    }
}

impl MatmulChoice {
    pub fn launch(self) -> Launch {
        self.launch_with(gemv_block_loads())
    }

    /// `launch`, the block GEMV's code words read four (`block_loads`) or one at a time.
    fn launch_with(self, block_loads: bool) -> Launch {
        let variant = Variant::new(self.act)
            .flag(if self.gemv { "GEMV" } else { "GEMM" })
            .flag(self.format.flag())
            .flag_if(self.bias, "BIAS")
            .flag_if(self.activation == Activation::Gelu, "GELU")
            .flag_if(self.activation == Activation::Silu, "SILU")
            .flag_if(self.mul, "MUL")
            .flag_if(self.add, "ADD")
            // X read as vec4s: by the tiled GEMM whenever K allows, by the GEMV for q4 / q8
            // weights (block by block).
            .flag_if(self.k4 && (!self.gemv || blocked(self.format)), "X4")
            // The GEMV's blocks read four code words at a time, one 16-byte load (as GPUs read best).
            .flag_if(self.k4 && self.gemv && blocked(self.format) && block_loads, "W4");
        let variant = self.fused.flags().iter().fold(variant, |v, f| v.flag(f));
        if self.gemv {
            // wg_sum / wg_max over the whole GEMV workgroup.
            let variant = if self.fused == Fused::QkvAttend { variant.constant("RED_N", MATMUL.entry("gemv").threads()) } else { variant };
            Launch::new(&MATMUL, "gemv", variant)
        } else {
            Launch::new(&MATMUL, "gemm", self.tile.apply(variant))
        }
    }
}

/// Formats whose GEMV takes whole 32-weight blocks per lane when K is a multiple of 4.
fn blocked(format: WeightFormat) -> bool {
    matches!(format, WeightFormat::Q4 | WeightFormat::Q8)
}

/// Whether the block GEMV reads four code words in one 16-byte load (W4): always, except
/// natively with `SPATIAL_MLLM_GEMV_LOADS=words` (one word a load, as before), which is kept to
/// measure the change on a lent GPU (tools/device/run.sh).
fn gemv_block_loads() -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        static BLOCKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *BLOCKS.get_or_init(|| std::env::var("SPATIAL_MLLM_GEMV_LOADS").map_or(true, |s| s.trim() != "words"))
    }
    #[cfg(target_arch = "wasm32")]
    true
}

/// Every variant `linear` can produce: both paths, every weight format, epilogue and tiling.
pub fn launches() -> Vec<Launch> {
    let formats = [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4];
    let mut out = Vec::new();
    for act in ACTS {
        for format in formats {
            for activation in [Activation::None, Activation::Gelu, Activation::Silu] {
                for bits in 0..16 {
                    let (bias, mul, add, k4) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
                    let choice = |gemv, tile| MatmulChoice { act, gemv, format, bias, activation, mul, add, k4, tile, fused: Fused::None };
                    // K's alignment selects nothing for the GEMV of f32 / f16 weights.
                    if !k4 || blocked(format) {
                        out.push(choice(true, GemmTile::DEFAULT).launch_with(true));
                    }
                    // The measuring knob's word-at-a-time reads (`gemv_block_loads`).
                    if k4 && blocked(format) {
                        out.push(choice(true, GemmTile::DEFAULT).launch_with(false));
                    }
                    for tile in GemmTile::all_for(act) {
                        out.push(choice(false, tile).launch());
                    }
                }
            }
        }
    }
    out.extend(super::decode::launches());
    out.extend(super::fold::launches());
    out
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
        if b.numel() != n || b.dtype != DType::F32 {
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
    let choice = MatmulChoice {
        act: gpu.act,
        gemv,
        format: w.format,
        bias: epi.bias.is_some(),
        activation: epi.act,
        mul: epi.mul.is_some(),
        add: epi.add.is_some(),
        k4: k % 4 == 0,
        tile,
        fused: Fused::None,
    };
    let launch = choice.launch();
    let pipe = launch.pipeline(gpu);
    let params = MatmulParams::plain(m, n, w);
    let mut binds = vec![MATMUL.bind("X", x), MATMUL.bind_buf("W", &w.buf), MATMUL.bind("Y", &y)];
    if let Some(b) = epi.bias {
        binds.push(MATMUL.bind("BIASES", b));
    }
    if let Some(t) = epi.mul {
        binds.push(MATMUL.bind("MULT", t));
    }
    if let Some(t) = epi.add {
        binds.push(MATMUL.bind("ADDT", t));
    }
    if gemv {
        // GEMV_WG_Y output rows per workgroup, one row of X per z.
        let rows = launch.workgroup()[1];
        let mut groups = crate::gpu::recorder_flat_groups((n as u32).div_ceil(rows), gpu.limits.max_compute_workgroups_per_dimension);
        groups[2] = m as u32;
        rec.dispatch(pipe, &params, &binds, groups);
    } else {
        let [gx, gy] = tile.groups(m, n);
        rec.dispatch(pipe, &params, &binds, [gx as u32, gy as u32, 1]);
    }
    Ok(y)
}
