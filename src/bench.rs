//! Kernel benchmark: time, bytes and FLOPs of each kernel at model-like sizes, reported against
//! the same device's measured copy bandwidth and best GEMM rate (DESIGN.md, performance method).
//! The kernels, sizes, bytes and FLOPs are the perf rows of the kernel cases
//! (`testing::cases`): the launchers the tests check, timed on the same set-up.
//! Timing: a fence (readback) around `reps` back-to-back dispatches in one submission.

pub mod bandwidth;
mod error;
pub mod eval;
pub mod qwen;
pub mod soak;
pub mod spatial;
pub mod vggt;

pub use error::BenchError;

use crate::gpu::{GemmTile, Gpu, GpuTimer, Recorder, Result, Tensor};
use crate::kernels::matmul::{linear_tiled, Epilogue, Path};
use crate::rng::Rng;
pub use crate::testing::Scale;
use crate::testing::{cases, cases::row_seed};
use crate::weights::{PackedWeight, Weight, WeightFormat};

/// The memory column every model benchmark reports.
pub const PEAK_GPU_MEMORY: &str = "peak GPU memory GB (weights + activations)";

/// Peak GPU memory of a run: `weight_bytes` (the loaded package: they stay on the GPU) plus the
/// activations' high-water mark since `Gpu::clear_pool` (the buffer pool's buffers in use and
/// kept for reuse; the KV cache is one of them). Call `gpu.clear_pool()` before the run.
pub fn peak_gpu_bytes(gpu: &Gpu, weight_bytes: u64) -> u64 {
    weight_bytes + gpu.stats.activation_bytes()
}

pub struct Row {
    pub name: String,
    pub ms: f64,
    pub bytes: f64,
    pub flops: f64,
    pub dispatches: usize,
}

impl Row {
    pub fn gbps(&self) -> f64 {
        self.bytes / self.ms / 1e6
    }
    pub fn gflops(&self) -> f64 {
        self.flops / self.ms / 1e6
    }
}

/// Time `reps` recordings of `f` in one submission; ms per repetition.
fn time(gpu: &Gpu, reps: usize, mut f: impl FnMut(&mut Recorder) -> Result<()>) -> Result<(f64, usize)> {
    let mut warm = Recorder::new(gpu);
    f(&mut warm)?;
    let per = warm.dispatches;
    warm.submit()?;
    pollster::block_on(gpu.finish())?;
    // GPU timestamps around the repetitions where the adapter has them, else the wall clock
    // around their submission and a fence.
    let timer = GpuTimer::new(gpu)?;
    let ms = pollster::block_on(crate::kernels::measure::time(gpu, timer.as_ref(), reps, f))?;
    Ok((ms, per))
}

fn weight(gpu: &Gpu, rng: &mut Rng, fmt: WeightFormat, n: usize, k: usize) -> Result<Weight> {
    let w = rng.normals(n * k, 0.02);
    Weight::upload(gpu, &PackedWeight::pack(fmt, &w, n, k), "bench weight")
}

fn act(gpu: &Gpu, rng: &mut Rng, shape: &[usize]) -> Result<Tensor> {
    gpu.upload_act(&rng.normals(shape.iter().product(), 1.0), shape)
}

/// Where the encoders' GEMM, convolutions and attention run: the tiling, on the matrix units or
/// why not (a bench header line).
pub fn gemm_line(gpu: &Gpu) -> String {
    let units = match gpu.coop_unavailable() {
        None => format!("GEMM, convolutions, attention: on the matrix units ({})\n", gpu.gemm_choice()),
        Some(why) => format!("GEMM, convolutions, attention: plain kernels, tile {} ({why})\n", gpu.gemm_choice()),
    };
    format!("{units}attention (prefill, encoders): {}\n", crate::kernels::attention::encoder_kernel(gpu))
}

/// A tiled GEMM [m, k] x [n, k]^T with weights in `fmt`, at the device's tiling.
pub fn gemm_row(gpu: &Gpu, rng: &mut Rng, fmt: WeightFormat, m: usize, n: usize, k: usize, reps: usize) -> Result<Row> {
    gemm_tile_row(gpu, rng, fmt, [m, n, k], reps, None)
}

/// `gemm_row` at another tiling than the device's (named in the row).
fn gemm_tile_row(gpu: &Gpu, rng: &mut Rng, fmt: WeightFormat, [m, n, k]: [usize; 3], reps: usize, tile: Option<GemmTile>) -> Result<Row> {
    let w = weight(gpu, rng, fmt, n, k)?;
    let x = act(gpu, rng, &[m, k])?;
    let t = tile.unwrap_or_else(|| gpu.gemm_tile());
    let (ms, d) = time(gpu, reps, |rec| linear_tiled(rec, &x, &w, Epilogue::none(), Path::Gemm, t).map(|_| ()))?;
    let bytes = (n * k) as f64 * fmt.bits_per_weight() / 8.0 + (m * k + m * n) as f64 * gpu.act.size() as f64;
    let name = match tile {
        Some(t) => format!("gemm {} {m}x{n}x{k} tile {t}", fmt.name()),
        None => format!("gemm {} {m}x{n}x{k}", fmt.name()),
    };
    Ok(Row { name, ms, bytes, flops: 2.0 * (m * n * k) as f64, dispatches: d })
}

/// The bandwidth probe's rows (`bandwidth::probe`: the copy kernel's grids and
/// `copy_buffer_to_buffer`; the best is the copy floor), then every perf row of every kernel case
/// (`testing::cases`) at `scale`.
pub fn run_all(gpu: &Gpu, scale: Scale, reps: usize) -> std::result::Result<Vec<Row>, BenchError> {
    let full = scale == Scale::Full;
    let act_b = gpu.act.size() as f64;
    let mut rows = Vec::new();
    rows.extend(bandwidth::probe(gpu, bandwidth::probe_bytes(gpu, scale), reps).map_err(BenchError::Probe)?);
    for case in cases() {
        for (i, row) in case.perf_rows(scale).into_iter().enumerate() {
            let name = format!("{} {}", case.name, row.label);
            let mut set = (row.setup)(gpu, &mut Rng::new(row_seed(7, case.name, i))).map_err(|reason| BenchError::RowSetup { row: name.clone(), reason })?;
            let (ms, d) = time(gpu, reps.min(row.max_reps), |rec| (set.launch)(rec).map(|_| ())).map_err(|source| BenchError::Row { row: name.clone(), source })?;
            rows.push(Row { name, ms, bytes: (row.bytes)(act_b), flops: row.flops, dispatches: d });
        }
    }
    // The other tilings the GEMM core could use (the matmul rows above run the device's).
    let [gm, gn, gk] = if full { [2048, 2048, 2048] } else { [256, 512, 512] };
    let mut rng = Rng::new(7);
    for tile in gpu.gemm_candidates().into_iter().filter(|&t| t != gpu.gemm_tile()) {
        rows.push(gemm_tile_row(gpu, &mut rng, WeightFormat::Q8, [gm, gn, gk], reps, Some(tile))?);
    }
    Ok(rows)
}

/// The best GEMM rate among the rows: the matmul cases' tiled GEMM rows.
fn best_gemm(rows: &[Row]) -> f64 {
    rows.iter().filter(|r| r.name.starts_with("matmul") && r.name.contains(" Gemm")).map(|r| r.gflops()).fold(0.0, f64::max)
}

/// The table: each row's rate as a fraction of the copy floor (the bandwidth probe's best row)
/// and of the best GEMM rate.
pub fn format_table(gpu: &Gpu, rows: &[Row]) -> String {
    let floor = bandwidth::copy_floor(rows);
    let copy = floor.map(|r| r.gbps()).unwrap_or(f64::NAN);
    let best = best_gemm(rows);
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(40);
    let mut s = format!(
        "device: {}\npath: {:?} activations\n{}times: {}\nfloors: copy bandwidth {copy:.1} GB/s (the best of the copy rows: {}), best GEMM {best:.1} GFLOP/s (both measured in this run)\ncopy floor against the adapter's published memory bandwidth: {}\n\n",
        gpu.info,
        gpu.act,
        gemm_line(gpu),
        if gpu.info.has_timestamps { "GPU timestamps around the repetitions" } else { "wall clock around the repetitions' submission and fence" },
        floor.map_or("none", |r| r.name.as_str()),
        bandwidth::versus_published(&gpu.info.name, copy),
    );
    s += &format!("{:<w$} {:>10} {:>10} {:>10} {:>8} {:>8} {:>5}\n", "kernel", "ms", "GB/s", "GFLOP/s", "%copy", "%gemm", "disp");
    for r in rows {
        s += &format!(
            "{:<w$} {:>10.3} {:>10.2} {:>10.2} {:>7.1}% {:>7.1}% {:>5}\n",
            r.name,
            r.ms,
            r.gbps(),
            r.gflops(),
            100.0 * r.gbps() / copy,
            if r.flops > 0.0 { 100.0 * r.gflops() / best } else { 0.0 },
            r.dispatches
        );
    }
    s
}
