//! Test utilities: a seeded random source, f16 rounding of inputs, and error measurement.

use crate::gpu::{DType, Gpu};
/// The seeded random source, at home in `crate::rng`; the tests reach it as `testing::Rng`.
pub use crate::rng::Rng;

/// Outcome of one parity check: a note when it passed, why it failed otherwise.
pub type CaseOutcome = std::result::Result<String, String>;

/// Round values as they will be stored on this device (f16 path: through f16).
pub fn as_stored(gpu: &Gpu, v: &[f32]) -> Vec<f32> {
    match gpu.act {
        DType::F16 => v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect(),
        _ => v.to_vec(),
    }
}

/// Compare `got` with `want`: max |diff| / max |want| must be <= tol; NaN anywhere (a poisoned,
/// unwritten output) fails.
pub fn compare(what: &str, got: &[f32], want: &[f64], tol: f64) -> CaseOutcome {
    if got.len() != want.len() {
        return Err(format!("{what}: {} values, expected {}", got.len(), want.len()));
    }
    let scale = want.iter().fold(0f64, |a, &w| a.max(w.abs())).max(1e-30);
    let mut worst = (0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !g.is_finite() {
            let bad: Vec<usize> = got.iter().enumerate().filter(|(_, v)| !v.is_finite()).map(|(i, _)| i).collect();
            return Err(format!(
                "{what}: element {i} is {g} (expected {w:.6}): unwritten or overflowed ({} of {} non-finite, last at {})",
                bad.len(),
                got.len(),
                bad.last().unwrap()
            ) + &format!(" finite at {:?}", got.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, _)| i).take(20).collect::<Vec<_>>()));
        }
        let e = (g as f64 - w).abs() / scale;
        if e > worst.0 {
            worst = (e, i);
        }
    }
    if worst.0 > tol {
        let i = worst.1;
        return Err(format!("{what}: rel err {:.2e} > {tol:.1e} at {i} (got {}, want {:.6})", worst.0, got[i], want[i]));
    }
    Ok(format!("{what}: rel err {:.1e}", worst.0))
}
