//! `info`: the adapter and the negotiated limits and features.

use crate::gpu;
use spatial_mllm_web::gpu::TileSource;
use spatial_mllm_web::kernels::attention;
use spatial_mllm_web::model::qwen::DecodeKernels;
use spatial_mllm_web::native::tile_store;

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
    let how = match c.source {
        TileSource::Measured => format!("measured now, remembered in {}", tile_store::path().display()),
        TileSource::Remembered => format!("measured on an earlier start, remembered in {} (delete it to measure again)", tile_store::path().display()),
        TileSource::Env => "set by SPATIAL_MLLM_GEMM_TILE".to_string(),
        TileSource::MatrixUnits => "the matrix units' tiling".to_string(),
        TileSource::Pinned | TileSource::Default => "the default".to_string(),
    };
    println!("GEMM tiling: {} ({how})", c.tile);
    println!("attention (prefill, encoders): {}", attention::encoder_kernel(&g));
    let (decode, why) = DecodeKernels::chosen(&g);
    println!("decode step: {} kernels, {} dispatches a layer ({why})", decode.name(), decode.dispatches_per_layer());
}
