//! The tiling of the GEMM core shared by the matmul and conv kernels (shaders/gemm_core.wgsl): a
//! few candidates, those the adapter's limits allow, and the one this device uses: measured once
//! (`kernels::gemm_tune::tune_gemm`), pinned (`Gpu::pin_gemm_tile`, tests), or natively set with
//! `SPATIAL_MLLM_GEMM_TILE=64x64x16` (or `128x64x16/8x4`); the default until then. Every tiling
//! sums each output's products in the same k order, so the choice does not change results.
//! A cooperative-matrix tiling (`coop` > 0: the GEMM on the adapter's matrix units, native f16 path
//! only) is the one exception: it is used wherever the device has matrix units
//! (`Gpu::coop_tile`), and its sums differ from the plain tilings' in the last bits.

use super::error::{GpuError, Result};
use super::shader::Variant;
use super::Gpu;

/// BM x BN outputs per workgroup, K in steps of BK, TM x TN outputs per thread; with `coop`,
/// TM x TN 8x8 matrix tiles per subgroup of `coop` invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmTile {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
    /// 0: the plain core. Else the subgroup size the cooperative-matrix core is built for.
    pub coop: u32,
}

const fn tile(bm: u32, bn: u32, bk: u32, tm: u32, tn: u32) -> GemmTile {
    GemmTile { bm, bn, bk, tm, tn, coop: 0 }
}

/// The side of the cooperative matrices the core uses (wgpu's `coop_mat8x8`, f16 x f16 + f32).
pub const COOP_SIDE: u32 = 8;

impl GemmTile {
    /// The tiling used before (or instead of) a measurement.
    pub const DEFAULT: GemmTile = tile(64, 64, 16, 4, 4);
    /// The tilings measured, the default first (it wins ties).
    pub const CANDIDATES: [GemmTile; 6] =
        [Self::DEFAULT, tile(32, 32, 16, 4, 4), tile(32, 64, 16, 4, 4), tile(128, 64, 16, 8, 4), tile(64, 128, 16, 4, 8), tile(128, 128, 16, 8, 8)];

    /// The cooperative-matrix tiling for subgroups of `subgroup` invocations: a 64x64 block in K
    /// steps of 16, 8 subgroups of 2x4 tiles (the accumulators stay in the subgroups' registers).
    pub const fn coop(subgroup: u32) -> GemmTile {
        GemmTile { bm: 64, bn: 64, bk: 16, tm: 2, tn: 4, coop: subgroup }
    }

    /// Subgroups of the cooperative-matrix core (1 for the plain core).
    fn subgroups(&self) -> u32 {
        if self.coop == 0 {
            1
        } else {
            (self.bm / (COOP_SIDE * self.tm)) * (self.bn / (COOP_SIDE * self.tn))
        }
    }

    /// Every tiling a launcher may use with activations of `act`: the candidates, and on the f16
    /// path the cooperative-matrix tilings for the fixed subgroup sizes of today's matrix units
    /// (8: Mesa's lavapipe; 32: NVIDIA, Apple).
    pub fn all_for(act: super::DType) -> Vec<GemmTile> {
        let mut out = Self::CANDIDATES.to_vec();
        if act == super::DType::F16 {
            out.extend([Self::coop(8), Self::coop(32)]);
        }
        out
    }

    pub fn threads(&self) -> u32 {
        if self.coop == 0 {
            (self.bm / self.tm) * (self.bn / self.tn)
        } else {
            self.subgroups() * self.coop
        }
    }

    /// Workgroup size: (threads along n, threads along m); the cooperative core's is flat.
    pub fn workgroup(&self) -> [u32; 2] {
        if self.coop == 0 {
            [self.bn / self.tn, self.bm / self.tm]
        } else {
            [self.threads(), 1]
        }
    }

    /// Workgroup memory of the two staged tiles (f16 for the cooperative core, plus an 8x8 f32
    /// tile per subgroup for its epilogue).
    pub fn storage_bytes(&self) -> u32 {
        if self.coop == 0 {
            self.bk * (self.bm + self.bn) * 4
        } else {
            self.bk * (self.bm + self.bn) * 2 + self.subgroups() * COOP_SIDE * COOP_SIDE * 4
        }
    }

    /// Whether the core can run this tiling at all: TM and TN multiples of 4 (A and B read from
    /// workgroup memory as vec4s, vec4 accumulators), BK a multiple of 4 and at most 32 (weights
    /// rows are padded to 32 columns), and the loads of a step spread evenly over the threads.
    pub fn is_consistent(&self) -> bool {
        let GemmTile { bm, bn, bk, tm, tn, coop } = *self;
        if [bm, bn, bk, tm, tn].contains(&0) || bk % 4 != 0 || bk > 32 {
            return false;
        }
        let side = COOP_SIDE;
        let shaped =
            if coop == 0 { tm % 4 == 0 && tn % 4 == 0 && bm % tm == 0 && bn % tn == 0 } else { bk % side == 0 && bm % (side * tm) == 0 && bn % (side * tn) == 0 };
        if !shaped {
            return false;
        }
        let (nt, kv) = (self.threads(), bk / 4);
        // A thread's loads: a fixed k offset, rows RS apart; a step's loads cover the tile exactly.
        nt % kv == 0 && bm % (nt / kv) == 0 && bn % (nt / kv) == 0 && (bn / 4) * bk >= nt
    }

    /// Whether this adapter can run it (workgroup size and memory limits).
    pub fn fits(&self, limits: &wgpu::Limits) -> bool {
        let [x, y] = self.workgroup();
        self.is_consistent()
            && self.threads() <= limits.max_compute_invocations_per_workgroup
            && x <= limits.max_compute_workgroup_size_x
            && y <= limits.max_compute_workgroup_size_y
            && self.storage_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// The variant's constants for the core.
    pub fn apply(&self, v: Variant) -> Variant {
        let v = v.constant("GEMM_BM", self.bm).constant("GEMM_BN", self.bn).constant("GEMM_BK", self.bk).constant("GEMM_TM", self.tm).constant("GEMM_TN", self.tn);
        if self.coop == 0 {
            v
        } else {
            v.flag("COOP").constant("COOP_S", self.coop)
        }
    }

    /// The tiling a variant's constants set (None: not a GEMM variant).
    pub fn of_variant(v: &Variant) -> Option<GemmTile> {
        let c = |name: &str| v.consts.get(name).and_then(|s| s.trim_end_matches('u').parse::<u32>().ok());
        let t = tile(c("GEMM_BM")?, c("GEMM_BN")?, c("GEMM_BK")?, c("GEMM_TM")?, c("GEMM_TN")?);
        Some(GemmTile { coop: c("COOP_S").unwrap_or(0), ..t })
    }

    /// The `gemm` entry point's workgroup size in a variant: (threads along n, threads along m, 1)
    /// of its tiling (`Entry::per_variant` of the matmul and conv contracts).
    pub fn entry_workgroup(v: &Variant) -> Option<[u32; 3]> {
        Self::of_variant(v).map(|t| {
            let [x, y] = t.workgroup();
            [x, y, 1]
        })
    }

    /// Workgroups for an M x N output (z = 1).
    pub fn groups(&self, m: usize, n: usize) -> [usize; 2] {
        [n.div_ceil(self.bn as usize), m.div_ceil(self.bm as usize)]
    }

    /// `BMxBNxBK` (the thread tile of the first candidate with that block, else 4x4) or
    /// `BMxBNxBK/TMxTN`.
    pub fn parse(s: &str) -> Option<GemmTile> {
        let (block, thread) = match s.trim().split_once('/') {
            Some((b, t)) => (b, Some(t)),
            None => (s.trim(), None),
        };
        let nums = |t: &str| t.split('x').map(|v| v.trim().parse::<u32>().ok()).collect::<Option<Vec<u32>>>();
        let b = nums(block)?;
        let [bm, bn, bk] = b[..] else { return None };
        let (tm, tn) = match thread.map(nums) {
            Some(Some(t)) if t.len() == 2 => (t[0], t[1]),
            Some(_) => return None,
            None => Self::CANDIDATES.iter().find(|c| (c.bm, c.bn, c.bk) == (bm, bn, bk)).map(|c| (c.tm, c.tn)).unwrap_or((4, 4)),
        };
        Some(tile(bm, bn, bk, tm, tn)).filter(|t| t.is_consistent())
    }
}

impl std::fmt::Display for GemmTile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}/{}x{}", self.bm, self.bn, self.bk, self.tm, self.tn)?;
        if self.coop > 0 {
            write!(f, " on matrix units (subgroups of {})", self.coop)?;
        }
        Ok(())
    }
}

/// How the device's tiling was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileSource {
    /// The default: not decided yet, or nothing to choose between (one candidate, a dry run).
    Default,
    /// Measured on this device.
    Measured,
    /// Set by `Gpu::pin_gemm_tile`.
    Pinned,
    /// Set by `SPATIAL_MLLM_GEMM_TILE`.
    Env,
    /// The cooperative-matrix tiling: the device has matrix units (`Gpu::coop_tile`).
    MatrixUnits,
    /// Measured on an earlier start on this device and remembered (`kernels::tuning_memo`).
    Remembered,
}

/// The device's tiling, how it was decided, and the measurements (ms per GEMM of `shape`).
#[derive(Clone, Debug)]
pub struct GemmChoice {
    pub tile: GemmTile,
    pub source: TileSource,
    /// (M, N, K) of the measured GEMM.
    pub shape: [usize; 3],
    pub timings: Vec<(GemmTile, f64)>,
}

impl std::fmt::Display for GemmChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?}", self.tile, self.source)?;
        if !self.timings.is_empty() {
            let [m, n, k] = self.shape;
            write!(f, " on {m}x{n}x{k}:")?;
            for (t, ms) in &self.timings {
                write!(f, " {t} {ms:.3} ms")?;
            }
        }
        write!(f, ")")
    }
}

impl Gpu {
    /// The candidate tilings this adapter can run (the default first, if it can).
    pub fn gemm_candidates(&self) -> Vec<GemmTile> {
        GemmTile::CANDIDATES.iter().copied().filter(|t| t.fits(&self.limits)).collect()
    }

    /// The tiling the matmul and conv kernels use now (read at every GEMM dispatch: the memoised
    /// tiling without copying its measurements).
    pub fn gemm_tile(&self) -> GemmTile {
        if let Some(c) = &*self.gemm_tile.lock().unwrap() {
            return c.tile;
        }
        self.gemm_choice().tile
    }

    /// The tiling and how it was decided: the memoised choice, else the environment's, else the
    /// default (or the first candidate that fits, on an adapter too small for it).
    pub fn gemm_choice(&self) -> GemmChoice {
        if let Some(c) = self.gemm_tile.lock().unwrap().clone() {
            return c;
        }
        if let Some(t) = self.env_gemm_tile() {
            return GemmChoice { tile: t, source: TileSource::Env, shape: [0; 3], timings: vec![] };
        }
        if let Some(t) = self.coop_tile() {
            return GemmChoice { tile: t, source: TileSource::MatrixUnits, shape: [0; 3], timings: vec![] };
        }
        let tile = self.gemm_candidates().first().copied().unwrap_or(GemmTile::DEFAULT);
        GemmChoice { tile, source: TileSource::Default, shape: [0; 3], timings: vec![] }
    }

    /// Whether a choice has been memoised (measured, pinned or taken from the environment).
    pub fn gemm_tile_decided(&self) -> bool {
        self.gemm_tile.lock().unwrap().is_some()
    }

    /// Use this tiling from now on (tests run every candidate this way); fails where the adapter
    /// cannot run it.
    pub fn pin_gemm_tile(&self, tile: GemmTile) -> Result<()> {
        if tile.coop > 0 && self.coop_tile() != Some(tile) {
            return Err(GpuError::Validation(format!("GEMM tile {tile} needs matrix units this device does not use")));
        }
        if !tile.fits(&self.limits) {
            return Err(GpuError::Validation(format!("GEMM tile {tile} does not fit this adapter's limits")));
        }
        self.set_gemm_choice(GemmChoice { tile, source: TileSource::Pinned, shape: [0; 3], timings: vec![] });
        Ok(())
    }

    /// The cooperative-matrix tiling where this device runs it: matrix units with 8x8x8 products
    /// of f16 into f32 (wgpu's `EXPERIMENTAL_COOPERATIVE_MATRIX`), the f16 path, one fixed subgroup
    /// size (the kernel places its tiles by subgroup), and not turned off by `SPATIAL_MLLM_COOP=0`.
    pub fn coop_tile(&self) -> Option<GemmTile> {
        self.coop_unavailable().is_none().then(|| GemmTile::coop(self.info.subgroup_sizes.0))
    }

    /// Why the GEMM does not run on matrix units here (None: it does), for a person.
    pub fn coop_unavailable(&self) -> Option<String> {
        let i = &self.info;
        let side = super::gemm_tile::COOP_SIDE;
        let shape = i.coop_matrix.iter().any(|s| (s.m, s.n, s.k, s.ab, s.cr) == (side, side, side, "f16", "f32"));
        let (lo, hi) = i.subgroup_sizes;
        let why = if i.coop_matrix.is_empty() {
            "the adapter has no cooperative matrices (wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX; never in a browser)".to_string()
        } else if !shape {
            format!(
                "none of the adapter's cooperative-matrix shapes ({}) is 8x8x8 f16->f32",
                i.coop_matrix.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
            )
        } else if self.act != super::DType::F16 {
            "the f32 path is in use (matrix units take f16 inputs)".to_string()
        } else if !i.has_subgroups {
            "subgroups are not available".to_string()
        } else if lo != hi || lo == 0 {
            format!("the subgroup size varies ({lo}..{hi}) and the kernel needs one")
        } else if !GemmTile::coop(lo).fits(&self.limits) {
            format!("its {} invocations per workgroup do not fit the adapter's limits", GemmTile::coop(lo).threads())
        } else if !cfg!(target_arch = "wasm32") && std::env::var("SPATIAL_MLLM_COOP").is_ok_and(|v| v.trim() == "0") {
            "SPATIAL_MLLM_COOP=0 turns it off".to_string()
        } else {
            return None;
        };
        Some(why)
    }

    pub(crate) fn set_gemm_choice(&self, c: GemmChoice) {
        *self.gemm_tile.lock().unwrap() = Some(c);
    }

    /// `SPATIAL_MLLM_GEMM_TILE`, natively, if it parses and fits (else a warning, and None).
    pub(crate) fn env_gemm_tile(&self) -> Option<GemmTile> {
        if cfg!(target_arch = "wasm32") {
            return None;
        }
        let s = std::env::var("SPATIAL_MLLM_GEMM_TILE").ok().filter(|s| !s.trim().is_empty())?;
        match GemmTile::parse(&s).filter(|t| t.fits(&self.limits)) {
            Some(t) => Some(t),
            None => {
                log::warn!("SPATIAL_MLLM_GEMM_TILE={s:?} is not a tiling this adapter can run (e.g. 64x64x16 or 128x64x16/8x4); ignored");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_consistent_and_fit_webgpu_defaults() {
        let web = wgpu::Limits::default();
        for t in GemmTile::CANDIDATES {
            assert!(t.is_consistent(), "{t}");
            assert!(t.fits(&web), "{t}");
            assert_eq!(GemmTile::parse(&t.to_string()), Some(t));
        }
        assert_eq!(GemmTile::parse("64x64x16"), Some(GemmTile::DEFAULT));
        assert_eq!(GemmTile::parse("128x64x16"), Some(tile(128, 64, 16, 8, 4)));
        assert_eq!(GemmTile::parse("64x64x16/4x3"), None);
        assert_eq!(GemmTile::parse("64x64x16/2x4"), None);
        assert_eq!(GemmTile::parse("64x64"), None);
        assert!(!tile(256, 256, 16, 4, 4).fits(&web));
        let v = tile(128, 64, 16, 8, 4).apply(Variant::new(crate::gpu::DType::F32));
        assert_eq!(GemmTile::of_variant(&v), Some(tile(128, 64, 16, 8, 4)));
        assert_eq!(GemmTile::entry_workgroup(&v), Some([16, 16, 1]));
        assert_eq!(GemmTile::entry_workgroup(&Variant::new(crate::gpu::DType::F32)), None);
    }
}
