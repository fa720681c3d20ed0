//! Picking the fastest of a few kernels on this device (the GEMM tiling, the plain attention
//! kernel): a problem grown along a ladder until the default (the first candidate) takes long
//! enough to time, then each candidate timed on it, the better of two runs (GPU timestamps where
//! the adapter has them, else the wall clock around submission and a fence). The fastest wins
//! unless within `MARGIN` of the default, which keeps near ties stable from start to start.

use crate::gpu::{clock, Gpu, GpuTimer, Recorder, Result};

/// A problem that takes this long (ms) is timed reliably enough: the ladder stops there.
const ENOUGH_MS: f64 = 2.0;
/// Another candidate must beat the default by this fraction to replace it.
const MARGIN: f64 = 0.05;

/// What a measurement found.
pub struct Fastest<C, S> {
    pub best: C,
    /// Milliseconds per run of the problem, for every candidate the device ran.
    pub timings: Vec<(C, f64)>,
    /// The ladder's rung the problem was built at.
    pub size: S,
}

/// `candidates` (the default first, at least one) timed on the problem `build` makes at the
/// first rung of `ladder` at which the default takes `ENOUGH_MS`; `record` records one run of a
/// candidate on it.
pub async fn fastest<C, S, P>(
    gpu: &Gpu,
    what: &str,
    candidates: &[C],
    ladder: &[S],
    build: impl Fn(&Gpu, S) -> Result<P>,
    record: impl Fn(&mut Recorder, C, &P) -> Result<()>,
) -> Result<Fastest<C, S>>
where
    C: Copy + PartialEq + std::fmt::Display,
    S: Copy,
{
    let first = candidates[0];
    let timer = GpuTimer::new(gpu)?;
    let timer = timer.as_ref();
    // A first run compiles the pipelines: without timestamps, which would count that, it runs once more.
    let mut size = ladder[0];
    let mut problem = build(gpu, size)?;
    if timer.is_none() {
        time(gpu, timer, 1, bind(&record, first, &problem)).await?;
    }
    let mut base = 0.0;
    for (i, &rung) in ladder.iter().enumerate() {
        if i > 0 {
            (size, problem) = (rung, build(gpu, rung)?);
        }
        base = time(gpu, timer, 1, bind(&record, first, &problem)).await?;
        if base >= ENOUGH_MS {
            break;
        }
    }
    let reps = ((2.0 * ENOUGH_MS / base.max(1e-3)).ceil() as usize).clamp(1, 8);
    let mut timings = Vec::new();
    for &c in candidates {
        // A candidate the device rejects (it should not: all fit the limits) is left out.
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let first_run = time(gpu, timer, if timer.is_some() { reps } else { 1 }, bind(&record, c, &problem)).await;
        if let Some(e) = scope.pop().await {
            log::warn!("{what} {c} failed on this adapter: {e}");
            continue;
        }
        let first_run = first_run?;
        let ms = if timer.is_some() { first_run } else { time(gpu, timer, reps, bind(&record, c, &problem)).await? };
        // The better of two runs (another process's work can slow one).
        timings.push((c, ms.min(time(gpu, timer, reps, bind(&record, c, &problem)).await?)));
    }
    let default_ms = timings.iter().find(|(c, _)| *c == first).map(|&(_, ms)| ms).unwrap_or(f64::INFINITY);
    let fastest = timings.iter().copied().fold((first, default_ms), |b, c| if c.1 < b.1 { c } else { b });
    let best = if fastest.1 < default_ms * (1.0 - MARGIN) { fastest.0 } else { first };
    // The problem's buffers are not wanted again: out of the pool, not kept beside the model.
    drop(problem);
    gpu.trim_pool();
    Ok(Fastest { best, timings, size })
}

/// `record` for one candidate and problem.
fn bind<'a, C: Copy + 'a, P>(record: &'a impl Fn(&mut Recorder, C, &P) -> Result<()>, c: C, p: &'a P) -> impl Fn(&mut Recorder) -> Result<()> + 'a {
    move |rec| record(rec, c, p)
}

/// Milliseconds per run: `reps` runs recorded back to back in one submission.
pub(crate) async fn time(gpu: &Gpu, timer: Option<&GpuTimer>, reps: usize, mut record: impl FnMut(&mut Recorder) -> Result<()>) -> Result<f64> {
    let mut rec = match timer {
        Some(t) => Recorder::timed(gpu, t),
        None => Recorder::new(gpu),
    };
    for _ in 0..reps {
        record(&mut rec)?;
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
