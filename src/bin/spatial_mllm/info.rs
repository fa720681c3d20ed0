//! `info`: the adapter and the negotiated limits and features.

use crate::gpu;

pub fn info(f32_only: bool) {
    let g = gpu(f32_only);
    println!("{}", g.info);
    let shapes: Vec<String> = g.info.coop_matrix.iter().map(|s| s.to_string()).collect();
    println!("cooperative matrices: {}", if shapes.is_empty() { "none".to_string() } else { shapes.join(", ") });
    match g.coop_unavailable() {
        None => println!("GEMM and convolutions: on the matrix units ({})", g.gemm_tile()),
        Some(why) => println!("GEMM and convolutions: plain kernels ({why})"),
    }
}
