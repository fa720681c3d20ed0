//! Which frames of a video the model sees.
//!
//! * Uniform sampling (qwen-vl-utils `fetch_video` with `nframes`, spec §2.1): the count is rounded
//!   to a multiple of FRAME_FACTOR = 2 (Python `round`, half to even), must lie in [2, total]
//!   (upstream raises `ValueError` otherwise: a video shorter than the request is an error, never
//!   padded), and the indices are `torch.linspace(0, total - 1, n).round()` in float32.
//! * The space-aware sampler's candidates (spec §4.1 step 1): `n = min(128, total)` and
//!   `np.linspace(0, total - 1, n, dtype=int)` (f64, then truncated toward zero).

use super::resize::TorchFloat;
use super::sizing::FRAME_FACTOR;
use super::{PreprocessError, Result};

/// The space-aware sampler's candidate count N_m.
pub const SA_CANDIDATES: usize = 128;

/// `round_by_factor(n, FRAME_FACTOR)`: the nearest multiple of 2, ties to even multiples
/// (Python's `round(n / 2) * 2`: 1 → 0, 3 → 4, 5 → 4, 7 → 8).
pub fn round_nframes(n: usize) -> usize {
    let (q, r) = (n / FRAME_FACTOR, n % FRAME_FACTOR);
    // FRAME_FACTOR is 2: r is 0 or exactly half, and a half goes to the even quotient.
    let q = if r * 2 < FRAME_FACTOR || (r * 2 == FRAME_FACTOR && q % 2 == 0) { q } else { q + 1 };
    q * FRAME_FACTOR
}

/// qwen-vl-utils `smart_nframes` for a requested `nframes`: rounded to a multiple of 2, and an
/// error (upstream: `ValueError`) unless 2 <= n <= total.
pub fn smart_nframes(requested: usize, total: usize) -> Result<usize> {
    if total == 0 {
        return Err(PreprocessError::NoFrames);
    }
    let rounded = round_nframes(requested);
    if rounded < FRAME_FACTOR || rounded > total {
        return Err(PreprocessError::FrameCount { requested, rounded, total });
    }
    Ok(rounded)
}

/// Uniform frame indices of qwen-vl-utils: `torch.linspace(0, total - 1, n).round().long()` with
/// `n = smart_nframes(requested, total)`, in PyTorch's x86-64 (AVX2 / AVX-512) arithmetic.
pub fn frame_indices(total: usize, requested: usize) -> Result<Vec<usize>> {
    frame_indices_with(total, requested, TorchFloat::Fma)
}

/// [`frame_indices`] for a given PyTorch build. ATen's CPU `linspace` works in float32:
/// step = (end − start) / (n − 1), value k = start + step · k for the first half and
/// end − step · (n − 1 − k) for the second (fused into one FMA by the AVX builds), then `round`
/// (half to even). The float32 error changes an index only for long videos with many frames
/// (e.g. 30 000 frames sampled 768 times, or 3 · 10⁶ frames sampled 16 times); this reproduces
/// even those (checked against torch 2.6 in tests/preprocess.rs).
pub fn frame_indices_with(total: usize, requested: usize, mode: TorchFloat) -> Result<Vec<usize>> {
    let n = smart_nframes(requested, total)?;
    let end = (total - 1) as f32;
    let step = end / (n - 1) as f32;
    Ok((0..n)
        .map(|k| {
            let v = if k < n / 2 {
                step * k as f32
            } else {
                let back = (n - 1 - k) as f32;
                match mode {
                    TorchFloat::Fma => (-step).mul_add(back, end),
                    TorchFloat::Plain => end - step * back,
                }
            };
            v.round_ties_even() as usize
        })
        .collect())
}

/// `np.linspace(0, total - 1, n, dtype=int)`, as numpy computes it: step = (total − 1) / (n − 1)
/// in f64, value k = k · step, the last value exactly total − 1, then truncation.
pub fn linspace_trunc(total: usize, n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![0];
    }
    let stop = (total as f64) - 1.0;
    let step = stop / (n - 1) as f64;
    let mut out: Vec<usize> = (0..n)
        .map(|k| {
            // numpy: y = arange(n) * step (or / div * delta when step == 0), + start (0).
            let y = if step == 0.0 { (k as f64) / ((n - 1) as f64) * stop } else { (k as f64) * step };
            y.max(0.0) as usize
        })
        .collect();
    out[n - 1] = stop.max(0.0) as usize;
    out
}

/// The space-aware sampler's candidate frames: `min(128, total)` indices from
/// `np.linspace(0, total - 1, n, dtype=int)`. Upstream raises "No frames found" for an empty video.
pub fn sa_candidate_indices(total: usize) -> Result<Vec<usize>> {
    if total == 0 {
        return Err(PreprocessError::NoFrames);
    }
    Ok(linspace_trunc(total, total.min(SA_CANDIDATES)))
}
