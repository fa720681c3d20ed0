//! VGGT's aggregator at a real config (random weights from a package): time per frame count and
//! size, the FLOP rate as a fraction of the same device's best GEMM rate, peak activation memory
//! (the buffer pool's high-water mark), peak GPU memory (weights + activations) and the largest
//! single tensor (which must fit the storage-binding limit: 128 MiB by WebGPU's default).

use super::{gemm_row, BenchError, Row, PEAK_GPU_MEMORY};
use crate::gpu::{Gpu, Recorder};
use crate::model::vggt::{Aggregator, Frames};
use crate::rng::Rng;
use crate::weights::WeightFormat;

pub struct VggtRun {
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    pub tokens: usize,
    pub ms: f64,
    pub flops: f64,
    pub activation_bytes: u64,
    pub largest_tensor: u64,
}

/// FLOPs of one forward: linear maps 24·n·d² per block (qkv, proj, 4·d MLP) for DINO's, the frame
/// and the global blocks, attention 4·d per query-key pair (within a frame, or over all frames).
pub fn flops(d: usize, depth: usize, frames: usize, per_frame: usize, patch_dim: usize) -> f64 {
    let n = (frames * per_frame) as f64;
    let (d, depth) = (d as f64, depth as f64);
    let linear = 24.0 * n * d * d * depth * 3.0;
    let local = 4.0 * d * frames as f64 * (per_frame * per_frame) as f64 * depth * 2.0; // DINO + frame
    let global = 4.0 * d * n * n * depth;
    linear + local + global + 2.0 * n * d * patch_dim as f64
}

/// Run the aggregator over random frames, keeping the DPT heads' layers (4, 11, 17, 23).
pub async fn run(gpu: &Gpu, agg: &Aggregator, frames: usize, height: usize, width: usize, reps: usize) -> Result<VggtRun, BenchError> {
    let mut rng = Rng::new(5);
    let px: Vec<f32> = (0..frames * 3 * height * width).map(|_| rng.unit() as f32).collect();
    let f = Frames { pixels: &px, count: frames, height, width };
    let depth = agg.dims.depth;
    let keep: Vec<usize> = [4, 11, 17, 23].into_iter().filter(|&l| l < depth).collect();
    let once = || async {
        let t0 = crate::gpu::clock::now_ms();
        let mut rec = Recorder::new(gpu);
        let out = agg.forward(&mut rec, &f, &keep, None)?;
        rec.submit()?;
        gpu.finish().await?;
        Ok::<_, BenchError>((crate::gpu::clock::now_ms() - t0, out.tokens))
    };
    gpu.clear_pool();
    gpu.stats.reset_largest();
    let (_, tokens) = once().await?; // warm-up: pipelines compiled, pool filled
    let activation_bytes = gpu.stats.activation_bytes();
    let largest_tensor = gpu.stats.largest_alloc().0;
    let mut ms = f64::INFINITY;
    for _ in 0..reps.max(1) {
        ms = ms.min(once().await?.0);
    }
    let patch_dim = 3 * agg.dims.patch * agg.dims.patch;
    Ok(VggtRun { frames, height, width, tokens, ms, flops: flops(agg.dims.dim, depth, frames, tokens, patch_dim), activation_bytes, largest_tensor })
}

/// The device's best GEMM rate at the aggregator's shapes (q8 weights, as the default policy stores them).
pub fn gemm_floor(gpu: &Gpu, d: usize, rows: usize) -> Result<Row, BenchError> {
    Ok(gemm_row(gpu, &mut Rng::new(3), WeightFormat::Q8, rows, 4 * d, d, 3)?)
}

pub fn format_table(gpu: &Gpu, weights_bytes: u64, runs: &[VggtRun], gemm: &Row) -> String {
    let mut s = format!("device: {}\npath: {:?} activations\nweights: {:.2} GB\n", gpu.info, gpu.act, weights_bytes as f64 / 1e9);
    s += &crate::bench::gemm_line(gpu);
    s += "\n";
    s += &format!(
        "| frames | size | tokens | ms | ms/frame | TFLOP | GFLOP/s | % of GEMM floor | peak activations (GB) | {PEAK_GPU_MEMORY} | largest tensor (MiB) |\n"
    );
    s += "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in runs {
        let gf = r.flops / r.ms / 1e6;
        s += &format!(
            "| {} | {}x{} | {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.0}% | {:.2} | {:.2} | {:.1} |\n",
            r.frames,
            r.width,
            r.height,
            r.frames * r.tokens,
            r.ms,
            r.ms / r.frames as f64,
            r.flops / 1e12,
            gf,
            100.0 * gf / gemm.gflops(),
            r.activation_bytes as f64 / 1e9,
            (weights_bytes + r.activation_bytes) as f64 / 1e9,
            r.largest_tensor as f64 / (1u64 << 20) as f64
        );
    }
    s += &format!("\nGEMM floor measured in the same run: {} {:.1} GFLOP/s\n", gemm.name, gemm.gflops());
    s
}
