//! Which plain kernel prefill and the encoders' attention run where the matrix units do not
//! (`kernels::attention`): `flash_blocked` in the shape for 32 KiB or for 16 KiB of workgroup
//! memory, or `flash_tile`. Which is fastest depends on the GPU (registers against occupancy),
//! so it is measured once per device (`kernels::attention_tune`), pinned (`Gpu::pin_attention`,
//! tests), or natively set with `SPATIAL_MLLM_ATTENTION=tile|blocked|blocked-16k`; the largest
//! `flash_blocked` until then. Every candidate computes the same attention (f32 softmax and
//! sums), to within rounding: the parity tests pass on each.

use super::error::{GpuError, Result};
use super::gemm_tile::TileSource;
use super::Gpu;

/// The workgroup memory sizes `flash_blocked` has shapes for: WebGPU's guaranteed 16 KiB and the
/// 32 KiB most GPUs offer (larger sizes run the 32 KiB shape).
pub const BLOCKED_STORAGE: [u32; 2] = [16384, 32768];

/// A plain attention kernel for prefill and the encoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlainAttention {
    /// `flash_tile`: one query per thread.
    Tile,
    /// `flash_blocked` in its shape for at most `storage` bytes of workgroup memory.
    Blocked { storage: u32 },
}

impl PlainAttention {
    /// `tile`, `blocked-16k`, `blocked-32k` (and `blocked`: the largest shape `max_storage` allows).
    pub fn parse(s: &str, max_storage: u32) -> Option<PlainAttention> {
        let s = s.trim();
        if s == "tile" {
            return Some(PlainAttention::Tile);
        }
        if s == "blocked" {
            return BLOCKED_STORAGE.iter().rev().find(|&&b| b <= max_storage).map(|&storage| PlainAttention::Blocked { storage });
        }
        let kib: u32 = s.strip_prefix("blocked-")?.strip_suffix('k')?.parse().ok()?;
        BLOCKED_STORAGE.contains(&(kib * 1024)).then_some(PlainAttention::Blocked { storage: kib * 1024 })
    }
}

impl std::fmt::Display for PlainAttention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlainAttention::Tile => write!(f, "tile"),
            PlainAttention::Blocked { storage } => write!(f, "blocked-{}k", storage / 1024),
        }
    }
}

/// The device's plain attention kernel, how it was decided, and the measurements (ms for the
/// measured problems, all candidates on the same ones).
#[derive(Clone, Debug)]
pub struct AttentionPick {
    pub kernel: PlainAttention,
    pub source: TileSource,
    /// Tokens of the measured problems (0: not measured).
    pub tokens: usize,
    pub timings: Vec<(PlainAttention, f64)>,
}

impl AttentionPick {
    fn unmeasured(kernel: PlainAttention, source: TileSource) -> AttentionPick {
        AttentionPick { kernel, source, tokens: 0, timings: vec![] }
    }
}

impl std::fmt::Display for AttentionPick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?}", self.kernel, self.source)?;
        if !self.timings.is_empty() {
            write!(f, " on {} tokens:", self.tokens)?;
            for (k, ms) in &self.timings {
                write!(f, " {k} {ms:.3} ms")?;
            }
        }
        write!(f, ")")
    }
}

impl Gpu {
    /// The plain kernels this adapter can run, the default first: `flash_blocked` in the largest
    /// shape its workgroup memory takes, then the smaller shape, then `flash_tile`.
    pub fn attention_candidates(&self) -> Vec<PlainAttention> {
        let storage = self.limits.max_compute_workgroup_storage_size;
        let blocked = BLOCKED_STORAGE.iter().rev().filter(|&&b| b <= storage).map(|&storage| PlainAttention::Blocked { storage });
        blocked.chain([PlainAttention::Tile]).collect()
    }

    /// The kernel and how it was decided: the memoised choice, else the environment's, else the
    /// default.
    pub fn attention_pick(&self) -> AttentionPick {
        if let Some(p) = self.attention_pick.lock().unwrap().clone() {
            return p;
        }
        if let Some(k) = self.env_attention() {
            return AttentionPick::unmeasured(k, TileSource::Env);
        }
        AttentionPick::unmeasured(self.attention_candidates()[0], TileSource::Default)
    }

    /// The kernel `Kernel::Auto` runs now (read at every attention dispatch: the memoised kernel
    /// without copying its measurements).
    pub fn attention_kernel(&self) -> PlainAttention {
        if let Some(p) = &*self.attention_pick.lock().unwrap() {
            return p.kernel;
        }
        self.attention_pick().kernel
    }

    /// Whether a choice has been memoised (measured, remembered, pinned or from the environment).
    pub fn attention_decided(&self) -> bool {
        self.attention_pick.lock().unwrap().is_some()
    }

    /// Use this kernel from now on; fails where the adapter cannot run it.
    pub fn pin_attention(&self, kernel: PlainAttention) -> Result<()> {
        if !self.attention_candidates().contains(&kernel) {
            return Err(GpuError::Validation(format!("attention kernel {kernel} does not fit this adapter's workgroup memory")));
        }
        self.set_attention_pick(AttentionPick::unmeasured(kernel, TileSource::Pinned));
        Ok(())
    }

    pub(crate) fn set_attention_pick(&self, p: AttentionPick) {
        *self.attention_pick.lock().unwrap() = Some(p);
    }

    /// `SPATIAL_MLLM_ATTENTION`, natively, if it names a kernel this adapter runs (else a
    /// warning, and None).
    pub(crate) fn env_attention(&self) -> Option<PlainAttention> {
        if cfg!(target_arch = "wasm32") {
            return None;
        }
        let s = std::env::var("SPATIAL_MLLM_ATTENTION").ok().filter(|s| !s.trim().is_empty())?;
        let k = PlainAttention::parse(&s, self.limits.max_compute_workgroup_storage_size).filter(|k| self.attention_candidates().contains(k));
        if k.is_none() {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| log::warn!("SPATIAL_MLLM_ATTENTION={s:?} is not a kernel this adapter runs (tile, blocked, blocked-16k or blocked-32k); ignored"));
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for k in [PlainAttention::Tile, PlainAttention::Blocked { storage: 16384 }, PlainAttention::Blocked { storage: 32768 }] {
            assert_eq!(PlainAttention::parse(&k.to_string(), 32768), Some(k));
        }
        assert_eq!(PlainAttention::parse("blocked", 16384), Some(PlainAttention::Blocked { storage: 16384 }));
        assert_eq!(PlainAttention::parse("blocked", 65536), Some(PlainAttention::Blocked { storage: 32768 }));
        assert_eq!(PlainAttention::parse("blocked-8k", 32768), None);
        assert_eq!(PlainAttention::parse("rows", 32768), None);
    }
}
