//! `info`: the adapter and the negotiated limits and features.

use crate::gpu;
use spatial_mllm_web::gpu::TileSource;
use spatial_mllm_web::kernels::attention;
use spatial_mllm_web::model::qwen::DecodeKernels;
use spatial_mllm_web::native::tuning_store;

pub fn info(f32_only: bool) {
    let g = gpu(f32_only);
    println!("{}", g.info);
    let shapes: Vec<String> = g.info.coop_matrix.iter().map(|s| s.to_string()).collect();
    println!("cooperative matrices: {}", if shapes.is_empty() { "none".to_string() } else { shapes.join(", ") });
    match g.coop_unavailable() {
        None => println!("GEMM and convolutions: on the matrix units ({})", g.gemm_tile()),
        Some(why) => println!("GEMM and convolutions: plain kernels ({why})"),
    }
    let c = g.gemm_choice();
    println!("GEMM tiling: {} ({})", c.tile, how(c.source, "SPATIAL_MLLM_GEMM_TILE"));
    let a = g.attention_pick();
    println!("attention (prefill, encoders): {}", attention::encoder_kernel(&g));
    if g.coop_tile().is_none() {
        println!("attention kernel: {} ({})", a.kernel, how(a.source, "SPATIAL_MLLM_ATTENTION"));
    }
    let (decode, why) = DecodeKernels::chosen(&g);
    println!("decode step: {} kernels, {} dispatches a layer ({why})", decode.name(), decode.dispatches_per_layer());
}

/// How a measured choice was decided, for a person.
fn how(source: TileSource, env: &str) -> String {
    match source {
        TileSource::Measured => format!("measured now, remembered in {}", tuning_store::path().display()),
        TileSource::Remembered => format!("measured on an earlier start, remembered in {} (delete it to measure again)", tuning_store::path().display()),
        TileSource::Env => format!("set by {env}"),
        TileSource::MatrixUnits => "the matrix units' tiling".to_string(),
        TileSource::Pinned | TileSource::Default => "the default".to_string(),
    }
}
