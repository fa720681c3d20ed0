//! Issue 17: Spatial-MLLM v1.1 answering about 16 frames of 644x476 (the paper's setting) must
//! hold at most 1 GiB of activations on the f16 path, so that the model (4.1 GB of weights) runs
//! beside a browser on an 8 GB laptop. A real run at that size takes hours on a CPU adapter, so the
//! whole sequence the app runs (ViT, VGGT, connector, session, prefill, decode) runs in dry-run
//! mode (every allocation and chunking decision as usual, no kernels) on full-size placeholder
//! weights, and the buffer pool's high-water mark (buffers in use plus those kept for reuse) is
//! checked, with the peak of each stage printed.

mod common;

use spatial_mllm_web::gpu::{DType, Gpu};
use spatial_mllm_web::model::spatial::memory::video_activations;
use spatial_mllm_web::model::spatial::Generation;
use spatial_mllm_web::testing::memory_plan::{plan_video_question, spatial_mllm, WEBGPU_DEFAULT_BINDING};
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::shapes::VggtDims;

/// The bound on activations at 16 frames of 644x476.
const PEAK_LIMIT: u64 = 1 << 30;

/// An f16 device that plans for WebGPU's default 128 MiB bindings (as `binding_limits.rs`).
/// Fails without shader-f16 unless ALLOW_NO_F16=1.
fn planning_gpu() -> Option<Gpu> {
    let mut gpu = common::gpu(true);
    if gpu.act != DType::F16 {
        assert_eq!(std::env::var("ALLOW_NO_F16").as_deref(), Ok("1"), "adapter {} has no shader-f16", gpu.info.name);
        return None;
    }
    gpu.limit_binding(WEBGPU_DEFAULT_BINDING);
    Some(gpu)
}

#[test]
fn a_16_frame_question_holds_at_most_1_gib_of_activations() {
    let Some(gpu) = planning_gpu() else { return };
    let (m, weights) = pollster::block_on(spatial_mllm(&gpu, Generation::V11)).unwrap();
    // The benchmark's reply length, and the app's (`engine.encode(frames, { maxNew: 1024 })`).
    for max_new in [16, 1024] {
        let plan = plan_video_question(&gpu, &m, 16, 476, 644, max_new, 16).unwrap();
        println!("16 x 644x476, a context for {max_new} new tokens:\n{plan}");
        println!("  peak GPU memory {:.2} GB (weights {:.2} GB + activations)", (weights + plan.peak) as f64 / 1e9, weights as f64 / 1e9);
        assert!(plan.peak <= PEAK_LIMIT, "{} bytes of activations at their peak, above {PEAK_LIMIT}", plan.peak);
        if max_new == 1024 {
            // The app's capability check (config only, for a session of 1024 new tokens and a
            // longer question) agrees: at least the measured peak, and not far above it.
            let dims = VggtDims::from_config(ModelKind::SpatialMllmV11, &serde_json::json!({}));
            let est = video_activations(&m.cfg, Some(&dims), 16, 476, 644, 2).activation_bytes;
            println!("  estimate from the config: {:.1} MiB", est as f64 / (1u64 << 20) as f64);
            assert!(plan.peak <= est && est <= plan.peak / 4 * 5, "estimate {est}, measured {}", plan.peak);
        }
    }
}
