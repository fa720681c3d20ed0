//! Issue 5: every tensor that VGGT and the connector allocate must fit WebGPU's default 128 MiB
//! storage binding at real sizes (VGGT-1B; 32 frames of 518x392 for frame sampling, 16 and 32
//! frames of 644x476 for Spatial-MLLM). A real run at these sizes takes hours on a CPU adapter, so
//! the real forward passes run in dry-run mode (allocations, shape checks and chunking as usual,
//! no kernels) on full-size weights that are never written, with the binding limit lowered to
//! 128 MiB: a tensor above it fails its allocation, and the largest one is reported.

mod common;

use spatial_mllm_web::gpu::{DType, Gpu};
use spatial_mllm_web::model::spatial::Generation;
use spatial_mllm_web::model::vggt::GeometrySource;
use spatial_mllm_web::testing::memory_plan::{plan_aggregator, plan_geometry, plan_spatial, spatial_encoder, vggt_1b, WEBGPU_DEFAULT_BINDING};

/// An f16 device (the path with the smallest activations, the one browsers with shader-f16 take)
/// that plans for 128 MiB bindings. Fails without shader-f16 unless ALLOW_NO_F16=1.
fn planning_gpu() -> Option<Gpu> {
    let mut gpu = common::gpu(true);
    if gpu.act != DType::F16 {
        assert_eq!(std::env::var("ALLOW_NO_F16").as_deref(), Ok("1"), "adapter {} has no shader-f16", gpu.info.name);
        return None;
    }
    gpu.limit_binding(WEBGPU_DEFAULT_BINDING);
    Some(gpu)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn fits(what: &str, planned: Result<(u64, Vec<usize>), String>) {
    let (bytes, shape) = planned.unwrap_or_else(|e| panic!("{what}: {e}"));
    println!("{what}: largest tensor {shape:?}, {:.1} MiB", mib(bytes));
    assert!(bytes <= WEBGPU_DEFAULT_BINDING, "{what}: {shape:?} is {bytes} bytes");
}

#[test]
fn frame_sampling_fits_128_mib_bindings() {
    let Some(gpu) = planning_gpu() else { return };
    let vggt = pollster::block_on(vggt_1b(&gpu)).unwrap();
    let dims = &vggt.aggregator.dims;
    let mut keep = dims.dpt_layers.to_vec();
    keep.push(dims.depth - 1);
    for (frames, h, w) in [(32, 392, 518), (16, 476, 644)] {
        fits(&format!("{frames} x {w}x{h}, aggregator"), plan_aggregator(&gpu, &vggt.aggregator, frames, h, w, &keep));
        for source in [GeometrySource::PointHead, GeometrySource::DepthAndCameras] {
            fits(&format!("{frames} x {w}x{h}, aggregator + {source:?}"), plan_geometry(&gpu, &vggt, frames, h, w, source));
        }
    }
}

#[test]
fn spatial_encoder_fits_128_mib_bindings() {
    let Some(gpu) = planning_gpu() else { return };
    for generation in [Generation::V10, Generation::V11] {
        let (agg, connector) = pollster::block_on(spatial_encoder(&gpu, generation)).unwrap();
        // At 32 frames the connector's 16 384-wide rows take two passes.
        for frames in [16, 32] {
            let (h, w) = (476, 644);
            fits(&format!("{generation:?}: {frames} x {w}x{h}, aggregator + connector"), plan_spatial(&gpu, &agg, &connector, frames, h, w));
        }
    }
}

/// Past 62 frames of 518x392 (64 542 tokens) the aggregator's token-wide activations themselves
/// ([tokens, 1024]: patch embeddings, residual stream, q, k, v) exceed 128 MiB: a clear error
/// before any work is submitted, naming the limit.
#[test]
fn more_tokens_than_a_binding_holds_is_a_clear_error() {
    let Some(gpu) = planning_gpu() else { return };
    let vggt = pollster::block_on(vggt_1b(&gpu)).unwrap();
    let e = plan_aggregator(&gpu, &vggt.aggregator, 64, 392, 518, &[23]).expect_err("64 frames of 518x392 do not fit 128 MiB bindings");
    let (bytes, shape) = gpu.stats.largest_alloc();
    println!("64 x 518x392: {e} (largest tensor {shape:?}, {:.1} MiB)", mib(bytes));
    assert!(e.contains("binding") && e.contains(&WEBGPU_DEFAULT_BINDING.to_string()), "{e}");
    assert!(shape[0] >= 64 * 1036 && shape[1] == 1024, "{shape:?}");
}
