//! Kernel benchmark: time, bytes and FLOPs of each kernel at model-like sizes, reported against
//! the same device's measured copy bandwidth and best GEMM rate (DESIGN.md, performance method).
//! Timing: a fence (readback) around `reps` back-to-back dispatches in one submission.

pub mod qwen;
pub mod spatial;
pub mod vggt;

use std::time::Instant;

use crate::gpu::{GemmTile, Gpu, GpuTimer, Recorder, Result, Tensor};
use crate::kernels::attention::{attention_with, Attention, HeadsView, Kernel};
use crate::kernels::elementwise::add;
use crate::kernels::matmul::{linear_tiled, linear_with, Epilogue, Path};
use crate::kernels::norm::rms_norm;
use crate::kernels::rope::{rope_inplace, RopeKind, RopeTable};
use crate::kernels::sample::{argmax, sample, Sampling};
use crate::rng::Rng;
use crate::weights::{PackedWeight, Weight, WeightFormat};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Sizes a CPU adapter (lavapipe) finishes in about a minute.
    Small,
    /// The real model's sizes (Qwen2.5-3B layers, VGGT attention).
    Full,
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
    let mut rec = match &timer {
        Some(t) => Recorder::timed(gpu, t),
        None => Recorder::new(gpu),
    };
    for _ in 0..reps {
        f(&mut rec)?;
    }
    let t0 = Instant::now();
    rec.submit()?;
    pollster::block_on(gpu.finish())?;
    let wall = t0.elapsed().as_secs_f64() * 1e3;
    let ms = match &timer {
        Some(t) => pollster::block_on(t.elapsed_ms(gpu))?,
        None => wall,
    };
    Ok((ms / reps as f64, per))
}

/// Device-to-device copy bandwidth (read + write bytes per second).
pub fn copy_bandwidth(gpu: &Gpu, bytes: u64, reps: usize) -> Result<Row> {
    let a = gpu.alloc(&[(bytes / 4) as usize], crate::gpu::DType::U32)?;
    let b = gpu.alloc(&[(bytes / 4) as usize], crate::gpu::DType::U32)?;
    let (ms, _) = time(gpu, reps, |rec| {
        rec.copy(&a, 0, &b, 0, bytes);
        Ok(())
    })?;
    Ok(Row { name: format!("copy {} MiB", bytes >> 20), ms, bytes: 2.0 * bytes as f64, flops: 0.0, dispatches: 0 })
}

fn weight(gpu: &Gpu, rng: &mut Rng, fmt: WeightFormat, n: usize, k: usize) -> Result<Weight> {
    let w = rng.normals(n * k, 0.02);
    Weight::upload(gpu, &PackedWeight::pack(fmt, &w, n, k), "bench weight")
}

fn act(gpu: &Gpu, rng: &mut Rng, shape: &[usize]) -> Result<Tensor> {
    gpu.upload_act(&rng.normals(shape.iter().product(), 1.0), shape)
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

/// A one-row GEMV [1, k] x [n, k]^T (a decode step's matrix) with weights in `fmt`.
fn gemv_row(gpu: &Gpu, rng: &mut Rng, fmt: WeightFormat, n: usize, k: usize, reps: usize) -> Result<Row> {
    let w = weight(gpu, rng, fmt, n, k)?;
    let x = act(gpu, rng, &[1, k])?;
    let (ms, d) = time(gpu, reps, |rec| linear_with(rec, &x, &w, Epilogue::none(), Path::Gemv).map(|_| ()))?;
    let bytes = (n * k) as f64 * fmt.bits_per_weight() / 8.0 + (k + n) as f64 * gpu.act.size() as f64;
    Ok(Row { name: format!("gemv {} 1x{n}x{k}", fmt.name()), ms, bytes, flops: 2.0 * (n * k) as f64, dispatches: d })
}

pub fn run_all(gpu: &Gpu, scale: Scale, reps: usize) -> Result<Vec<Row>> {
    let mut rng = Rng::new(7);
    let act_b = gpu.act.size() as f64;
    let full = scale == Scale::Full;
    let mut rows = Vec::new();
    let copy_bytes: u64 = if full { 512 << 20 } else { 64 << 20 };
    rows.push(copy_bandwidth(gpu, copy_bytes.min(gpu.info.max_binding / 2), reps)?);

    // GEMM (prefill / encoders) and GEMV (decode) over each weight format.
    let (gm, gn, gk) = if full { (2048, 2048, 2048) } else { (256, 512, 512) };
    let (vn, vk) = if full { (11008, 2048) } else { (2048, 1024) };
    for fmt in WeightFormat::all() {
        rows.push(gemm_row(gpu, &mut rng, fmt, gm, gn, gk, reps)?);
        rows.push(gemv_row(gpu, &mut rng, fmt, vn, vk, reps)?);
    }
    // The other tilings the GEMM core could use here (the device's is the rows above).
    for tile in gpu.gemm_candidates().into_iter().filter(|&t| t != gpu.gemm_tile()) {
        rows.push(gemm_tile_row(gpu, &mut rng, WeightFormat::Q8, [gm, gn, gk], reps, Some(tile))?);
    }
    // q4 with K a multiple of 4 reads X as vec4s, block by block; the general loop otherwise.
    rows.push(gemv_row(gpu, &mut rng, WeightFormat::Q4, vn, vk - 2, reps)?);

    // Attention: VGGT-like full attention (head dim 64) and Qwen decode over a KV cache.
    let (an, ah) = if full { (4096, 16) } else { (512, 4) };
    let qkv = act(gpu, &mut rng, &[an, 3 * ah * 64])?;
    let view = |off| HeadsView { t: &qkv, tokens: an, heads: ah, stride: 3 * ah * 64, off };
    let (ms, d) = time(gpu, reps, |rec| {
        let a = Attention { q: view(0), k: view(ah * 64), v: view(2 * ah * 64), head_dim: 64, causal: false, q_pos0: 0, segments: None, scale: 0.125 };
        attention_with(rec, &a, Kernel::Tile).map(|_| ())
    })?;
    rows.push(Row {
        name: format!("attention full {an} tok x {ah} heads x 64"),
        ms,
        bytes: (4 * an * ah * 64) as f64 * act_b,
        flops: 4.0 * (an * an * ah * 64) as f64,
        dispatches: d,
    });
    let kv_len = if full { 4096 } else { 1024 };
    let cache = act(gpu, &mut rng, &[kv_len, 2 * 2 * 128])?;
    let q = act(gpu, &mut rng, &[1, 16 * 128])?;
    let (ms, d) = time(gpu, reps, |rec| {
        let a = Attention {
            q: HeadsView::dense(&q, 16),
            k: HeadsView { t: &cache, tokens: kv_len, heads: 2, stride: 512, off: 0 },
            v: HeadsView { t: &cache, tokens: kv_len, heads: 2, stride: 512, off: 256 },
            head_dim: 128,
            causal: true,
            q_pos0: kv_len - 1,
            segments: None,
            scale: 128f32.powf(-0.5),
        };
        attention_with(rec, &a, Kernel::Rows).map(|_| ())
    })?;
    rows.push(Row {
        name: format!("attention decode kv {kv_len}, 16q/2kv x 128"),
        ms,
        bytes: (kv_len * 512) as f64 * act_b,
        flops: 4.0 * (kv_len * 16 * 128) as f64,
        dispatches: d,
    });

    // Norm, RoPE, element-wise, token selection.
    let (tn, td) = if full { (4096, 2048) } else { (512, 2048) };
    let x = act(gpu, &mut rng, &[tn, td])?;
    let y = act(gpu, &mut rng, &[tn, td])?;
    let g = gpu.upload_f32(&vec![1.0; td], &[td])?;
    let (ms, d) = time(gpu, reps, |rec| rms_norm(rec, &x, &g, 1e-6).map(|_| ()))?;
    rows.push(Row { name: format!("rms_norm {tn}x{td}"), ms, bytes: 2.0 * (tn * td) as f64 * act_b, flops: 4.0 * (tn * td) as f64, dispatches: d });
    let (ms, d) = time(gpu, reps, |rec| add(rec, &x, &y).map(|_| ()))?;
    rows.push(Row { name: format!("add {tn}x{td}"), ms, bytes: 3.0 * (tn * td) as f64 * act_b, flops: (tn * td) as f64, dispatches: d });
    let table = RopeTable::new(gpu, RopeKind::MRope { theta: 1e6, sections: [16, 24, 24] }, 128)?;
    let pos = gpu.upload_i32(&vec![3; tn * 3], &[tn, 3])?;
    let (ms, d) = time(gpu, reps, |rec| rope_inplace(rec, &x, 16, td, 0, &pos, &table))?;
    rows.push(Row { name: format!("rope mrope {tn} tok x 16 x 128"), ms, bytes: 2.0 * (tn * td) as f64 * act_b, flops: 6.0 * (tn * td) as f64, dispatches: d });
    let vocab = 151_936;
    let logits = act(gpu, &mut rng, &[1, vocab])?;
    let (ms, d) = time(gpu, reps, |rec| argmax(rec, &logits, 0).map(|_| ()))?;
    rows.push(Row { name: format!("argmax {vocab}"), ms, bytes: vocab as f64 * act_b, flops: vocab as f64, dispatches: d });
    let s = Sampling { temperature: 0.7, top_p: 0.9, top_k: 50, u: 0.5 };
    let (ms, d) = time(gpu, reps.min(3), |rec| sample(rec, &logits, 0, s).map(|_| ()))?;
    rows.push(Row { name: format!("sample top-k/top-p {vocab}"), ms, bytes: 64.0 * vocab as f64 * act_b, flops: 64.0 * vocab as f64, dispatches: d });
    Ok(rows)
}

/// The table: each row's rate as a fraction of the copy bandwidth and of the best GEMM rate.
pub fn format_table(gpu: &Gpu, rows: &[Row]) -> String {
    let copy = rows.iter().find(|r| r.name.starts_with("copy")).map(|r| r.gbps()).unwrap_or(f64::NAN);
    let best = rows.iter().filter(|r| r.name.starts_with("gemm")).map(|r| r.gflops()).fold(0.0, f64::max);
    let mut s = format!(
        "device: {}\npath: {:?} activations\ngemm tile: {}\ntimes: {}\nfloors: copy bandwidth {copy:.1} GB/s, best GEMM {best:.1} GFLOP/s (both measured in this run)\n\n",
        gpu.info,
        gpu.act,
        gpu.gemm_choice(),
        if gpu.info.has_timestamps { "GPU timestamps around the repetitions" } else { "wall clock around the repetitions' submission and fence" }
    );
    s += &format!("{:<40} {:>10} {:>10} {:>10} {:>8} {:>8} {:>5}\n", "kernel", "ms", "GB/s", "GFLOP/s", "%copy", "%gemm", "disp");
    for r in rows {
        s += &format!(
            "{:<40} {:>10.3} {:>10.2} {:>10.2} {:>7.1}% {:>7.1}% {:>5}\n",
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
