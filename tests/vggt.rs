//! VGGT against the upstream code (tests/fixtures/vggt), natively; the checks live in
//! `spatial_mllm_web::testing::vggt_parity` and run in the browser harness too.

mod common;

use common::{gpu, load_params};
use spatial_mllm_web::gpu::{DType, Gpu, Recorder};
use spatial_mllm_web::model::vggt::{Aggregator, Frames};
use spatial_mllm_web::model::Params;
use spatial_mllm_web::testing::vggt_parity::{self, VggtUnderTest};
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::shapes::VggtDims;

fn aggregator(gpu: &Gpu, params: &Params, config: &serde_json::Value) -> Aggregator {
    pollster::block_on(Aggregator::new(gpu, VggtDims::from_config(ModelKind::Vggt, config), params)).unwrap()
}

fn load(gpu: &Gpu) -> Aggregator {
    let (params, config) = load_params(gpu, "vggt");
    aggregator(gpu, &params, &config)
}

#[test]
fn aggregator_and_camera_head_match_upstream() {
    let gpu = gpu(false);
    let (params, config) = load_params(&gpu, "vggt");
    let mut m = VggtUnderTest { agg: aggregator(&gpu, &params, &config), params: &params, config: &config };
    let r = common::reference("vggt");
    for name in vggt_parity::CHECKS {
        match pollster::block_on(vggt_parity::run_check(&gpu, &r, &mut m, name)) {
            Ok(detail) => println!("{name}: {detail}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

/// The f16 activation path within f16's error. Fails without shader-f16 unless ALLOW_NO_F16=1.
#[test]
fn aggregator_f16_path_stays_close() {
    let gpu = gpu(true);
    if gpu.act != DType::F16 {
        assert_eq!(std::env::var("ALLOW_NO_F16").as_deref(), Ok("1"), "adapter {} has no shader-f16", gpu.info.name);
        return;
    }
    let agg = load(&gpu);
    println!("GEMM and convolutions: {}", gpu.gemm_choice());
    println!("{}", pollster::block_on(vggt_parity::check_aggregator(&gpu, &common::reference("vggt"), &agg, 1e-2)).unwrap());
}

/// Zero frames, frames of a size that is not a multiple of the patch, a frame smaller than one
/// patch, mixed sizes (a pixel count that disagrees), a layer beyond the depth: clear errors.
#[test]
fn bad_frames_are_clear_errors() {
    let gpu = gpu(false);
    let agg = load(&gpu);
    let mut rec = Recorder::new(&gpu);
    let px = vec![0.5f32; 2 * 3 * 42 * 56];
    let cases: [(Frames, &[usize], &str); 5] = [
        (Frames { pixels: &[], count: 0, height: 42, width: 56 }, &[0], "no frames"),
        (Frames { pixels: &px[..3 * 40 * 50], count: 1, height: 40, width: 50 }, &[0], "multiples of the 14-px patch"),
        (Frames { pixels: &px[..3 * 7 * 7], count: 1, height: 7, width: 7 }, &[0], "multiples of the 14-px patch"),
        (Frames { pixels: &px[..2 * 3 * 42 * 56 - 100], count: 2, height: 42, width: 56 }, &[0], "same size"),
        (Frames { pixels: &px, count: 2, height: 42, width: 56 }, &[9], "layer 9"),
    ];
    for (f, keep, want) in cases {
        let e = agg.forward(&mut rec, &f, keep, None).err().expect("bad frames must fail");
        assert!(e.to_string().contains(want), "{e}");
    }
}
