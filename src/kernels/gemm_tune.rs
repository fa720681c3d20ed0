//! Choosing the GEMM core's tiling for this device by measurement (once; memoised on the `Gpu`).
//! The default tiling first runs GEMMs of growing size until one takes long enough to time, then
//! each candidate the adapter can run times that GEMM (`measure::fastest`); the fastest wins, the
//! default on a near tie.
//! Call it once after creating the device (the CLI and the web engine do); until then, and where
//! `SPATIAL_MLLM_GEMM_TILE` is set, nothing is measured.

use super::matmul::{linear_tiled, Epilogue, Path};
use super::measure::fastest;
use crate::gpu::{GemmChoice, Gpu, Result, Tensor, TileSource};
use crate::weights::{Weight, WeightFormat};

/// GEMM sizes (M, N, K) tried in turn with the default tiling.
const LADDER: [[usize; 3]; 4] = [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 1024]];

/// The device's tiling: measured now unless already decided (memoised, pinned or set in the
/// environment).
pub async fn tune_gemm(gpu: &Gpu) -> Result<GemmChoice> {
    if gpu.gemm_tile_decided() {
        return Ok(gpu.gemm_choice());
    }
    let decide = |c: GemmChoice| {
        gpu.set_gemm_choice(c.clone());
        c
    };
    if let Some(tile) = gpu.env_gemm_tile() {
        return Ok(decide(GemmChoice { tile, source: TileSource::Env, shape: [0; 3], timings: vec![] }));
    }
    if let Some(tile) = gpu.coop_tile() {
        // Matrix units: the cooperative-matrix core, which the plain tilings cannot approach.
        return Ok(decide(GemmChoice { tile, source: TileSource::MatrixUnits, shape: [0; 3], timings: vec![] }));
    }
    let candidates = gpu.gemm_candidates();
    let Some(&first) = candidates.first() else {
        return Ok(gpu.gemm_choice());
    };
    if candidates.len() == 1 || gpu.is_dry_run() {
        // Nothing to choose between (or nothing runs): the first candidate, unmeasured.
        return Ok(decide(GemmChoice { tile: first, source: TileSource::Default, shape: [0; 3], timings: vec![] }));
    }
    let found = fastest(gpu, "GEMM tile", &candidates, &LADDER, Problem::new, |rec, tile, p| {
        linear_tiled(rec, &p.x, &p.w, Epilogue::none(), Path::Gemm, tile)?;
        Ok(())
    })
    .await?;
    let c = GemmChoice { tile: found.best, source: TileSource::Measured, shape: found.size, timings: found.timings };
    log::info!("GEMM tile {c}");
    Ok(decide(c))
}

/// The measured GEMM's operands (zeros: the time does not depend on the values).
struct Problem {
    x: Tensor,
    w: Weight,
}

impl Problem {
    fn new(gpu: &Gpu, shape: [usize; 3]) -> Result<Problem> {
        let [m, n, k] = shape;
        let x = gpu.upload_act(&vec![0.0; m * k], &[m, k])?;
        let w = Weight::placeholder(gpu, WeightFormat::Q8, n, k, "gemm tuning")?;
        Ok(Problem { x, w })
    }
}
