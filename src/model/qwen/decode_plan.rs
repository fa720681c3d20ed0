//! How a decode step runs its layers (`DecodeKernels`) and which kernels a model runs at which
//! context length (`DecodePlan`); `decode_choice` measures the plan on a GPU.

use crate::gpu::Gpu;

/// How a decode step (at most `GEMV_MAX_ROWS` rows) runs its layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeKernels {
    /// One kernel per operation, as a prefill: 12-13 dispatches a layer.
    Separate,
    /// Norms, biases, RoPE, the cache write, SiLU * up and the key ranges' merge fused into the
    /// GEMVs: 5 dispatches a layer, bit-identical to `Separate` (src/kernels/decode.rs).
    Fused,
    /// `Fused` with the attention folded into the q/k/v pass: 4 a layer (src/kernels/fold.rs).
    Folded,
}

impl DecodeKernels {
    pub const ALL: [DecodeKernels; 3] = [DecodeKernels::Folded, DecodeKernels::Fused, DecodeKernels::Separate];

    /// Folded on a GPU, where a decode step is bound by its dispatches; separate on a CPU
    /// adapter (lavapipe), where it is bound by arithmetic and each fused workgroup's prologue
    /// (the norm or the merge of X) costs more than the dispatches it saves: see docs/figures.md.
    /// Natively `SPATIAL_MLLM_DECODE=folded|fused|separate` chooses instead.
    pub fn for_adapter(gpu: &Gpu) -> DecodeKernels {
        Self::chosen(gpu).0
    }

    /// `for_adapter` and why: "set by SPATIAL_MLLM_DECODE", or the adapter's kind.
    pub fn chosen(gpu: &Gpu) -> (DecodeKernels, &'static str) {
        if let Some(k) = Self::from_env() {
            return (k, "set by SPATIAL_MLLM_DECODE");
        }
        if gpu.info.device_type == "Cpu" {
            (DecodeKernels::Separate, "the default on a CPU adapter")
        } else {
            (DecodeKernels::Folded, "the default on a GPU until a model's first load measures the three")
        }
    }

    /// The kernels `SPATIAL_MLLM_DECODE` names, natively (a warning for a name it does not know).
    pub fn from_env() -> Option<DecodeKernels> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(s) = std::env::var("SPATIAL_MLLM_DECODE") {
            match Self::parse(&s) {
                Some(k) => return Some(k),
                None => log::warn!("SPATIAL_MLLM_DECODE={s:?} is not folded, fused or separate; ignored"),
            }
        }
        None
    }

    /// Dispatches per decoder layer of a decode step.
    pub fn dispatches_per_layer(self) -> &'static str {
        match self {
            DecodeKernels::Separate => "12-13",
            DecodeKernels::Fused => "5",
            DecodeKernels::Folded => "4",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DecodeKernels::Separate => "separate",
            DecodeKernels::Fused => "fused",
            DecodeKernels::Folded => "folded",
        }
    }

    pub fn parse(s: &str) -> Option<DecodeKernels> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl std::fmt::Display for DecodeKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Contexts of this many cached tokens or more run the plan's `long` kernels.
pub const LONG_CONTEXT: usize = 1024;

/// The decode step's kernels below `LONG_CONTEXT` cached tokens and from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodePlan {
    pub short: DecodeKernels,
    pub long: DecodeKernels,
}

impl DecodePlan {
    pub const fn all(k: DecodeKernels) -> DecodePlan {
        DecodePlan { short: k, long: k }
    }

    /// The kernels of a step after `past` cached tokens.
    pub fn at(&self, past: usize) -> DecodeKernels {
        if past < LONG_CONTEXT {
            self.short
        } else {
            self.long
        }
    }

    /// `folded` (both bands) or `folded/fused` (short, long).
    pub fn parse(s: &str) -> Option<DecodePlan> {
        match s.trim().split_once('/') {
            Some((a, b)) => Some(DecodePlan { short: DecodeKernels::parse(a)?, long: DecodeKernels::parse(b)? }),
            None => DecodeKernels::parse(s.trim()).map(DecodePlan::all),
        }
    }
}

impl std::fmt::Display for DecodePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.short == self.long {
            write!(f, "{}", self.short.name())
        } else {
            write!(f, "{}/{}", self.short.name(), self.long.name())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_back_and_pick_by_context() {
        let p = DecodePlan { short: DecodeKernels::Folded, long: DecodeKernels::Fused };
        assert_eq!(DecodePlan::parse(&p.to_string()), Some(p));
        assert_eq!(p.to_string(), "folded/fused");
        assert_eq!(DecodePlan::parse("separate"), Some(DecodePlan::all(DecodeKernels::Separate)));
        assert_eq!(DecodePlan::parse("folded/rows"), None);
        assert_eq!((p.at(0), p.at(LONG_CONTEXT - 1), p.at(LONG_CONTEXT)), (DecodeKernels::Folded, DecodeKernels::Folded, DecodeKernels::Fused));
    }
}
