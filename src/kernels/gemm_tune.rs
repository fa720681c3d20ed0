//! Choosing the GEMM core's tiling for this device by measurement (once; memoised on the `Gpu`).
//! The default tiling first runs GEMMs of growing size until one takes long enough to time, then
//! each candidate the adapter can run times that GEMM, the better of two runs (GPU timestamps where
//! the adapter has them, else the wall clock around submission and a fence); the fastest wins, the
//! default on a near tie.
//! Call it once after creating the device (the CLI and the web engine do); until then, and where
//! `SPATIAL_MLLM_GEMM_TILE` is set, nothing is measured.

use super::matmul::{linear_tiled, Epilogue, Path};
use crate::gpu::{clock, GemmChoice, GemmTile, Gpu, GpuTimer, Recorder, Result, Tensor, TileSource};
use crate::weights::{Weight, WeightFormat};

/// GEMM sizes (M, N, K) tried in turn with the default tiling.
const LADDER: [[usize; 3]; 4] = [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 1024]];
/// A GEMM that takes this long (ms) is timed reliably enough: the ladder stops there.
const ENOUGH_MS: f64 = 2.0;
/// Another tiling must beat the default by this fraction to replace it.
const MARGIN: f64 = 0.05;

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
    let timer = GpuTimer::new(gpu)?;
    let timer = timer.as_ref();
    // Grow the GEMM until the default takes long enough (a first run compiles its pipeline:
    // without timestamps, which would count that, it runs once more).
    let mut problem = Problem::new(gpu, LADDER[0])?;
    if timer.is_none() {
        time(gpu, timer, first, &problem, 1).await?;
    }
    let mut base = 0.0;
    for (i, &shape) in LADDER.iter().enumerate() {
        if i > 0 {
            problem = Problem::new(gpu, shape)?;
        }
        base = time(gpu, timer, first, &problem, 1).await?;
        if base >= ENOUGH_MS {
            break;
        }
    }
    let reps = ((2.0 * ENOUGH_MS / base.max(1e-3)).ceil() as usize).clamp(1, 8);
    let mut timings = Vec::new();
    for &tile in &candidates {
        // A candidate the device rejects (it should not: all fit the limits) is left out.
        // Without timestamps a first run compiles the pipeline outside the timed one.
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let first_run = time(gpu, timer, tile, &problem, if timer.is_some() { reps } else { 1 }).await;
        if let Some(e) = scope.pop().await {
            log::warn!("GEMM tile {tile} failed on this adapter: {e}");
            continue;
        }
        let first_run = first_run?;
        let ms = if timer.is_some() { first_run } else { time(gpu, timer, tile, &problem, reps).await? };
        // The better of two runs (another process's work can slow one).
        timings.push((tile, ms.min(time(gpu, timer, tile, &problem, reps).await?)));
    }
    let default_ms = timings.iter().find(|(t, _)| *t == first).map(|&(_, ms)| ms).unwrap_or(f64::INFINITY);
    let best = timings.iter().copied().fold((first, default_ms), |b, c| if c.1 < b.1 { c } else { b });
    let tile = if best.1 < default_ms * (1.0 - MARGIN) { best.0 } else { first };
    let c = GemmChoice { tile, source: TileSource::Measured, shape: problem.shape, timings };
    log::info!("GEMM tile {c}");
    Ok(decide(c))
}

/// The measured GEMM's operands (zeros: the time does not depend on the values).
struct Problem {
    shape: [usize; 3],
    x: Tensor,
    w: Weight,
}

impl Problem {
    fn new(gpu: &Gpu, shape: [usize; 3]) -> Result<Problem> {
        let [m, n, k] = shape;
        let x = gpu.upload_act(&vec![0.0; m * k], &[m, k])?;
        let w = Weight::placeholder(gpu, WeightFormat::Q8, n, k, "gemm tuning")?;
        Ok(Problem { shape, x, w })
    }
}

/// Milliseconds per GEMM of `reps` back-to-back in one submission.
async fn time(gpu: &Gpu, timer: Option<&GpuTimer>, tile: GemmTile, p: &Problem, reps: usize) -> Result<f64> {
    let mut rec = match timer {
        Some(t) => Recorder::timed(gpu, t),
        None => Recorder::new(gpu),
    };
    for _ in 0..reps {
        linear_tiled(&mut rec, &p.x, &p.w, Epilogue::none(), Path::Gemm, tile)?;
    }
    let t0 = clock::now_ms();
    rec.submit()?;
    gpu.finish().await?;
    let wall = clock::now_ms() - t0;
    let ms = match timer {
        Some(t) => t.elapsed_ms(gpu).await?,
        None => wall,
    };
    gpu.check()?;
    Ok(ms / reps as f64)
}
