//! VGGT's DPT depth and point heads against the upstream code (tests/fixtures/vggt), natively:
//! the checks live in `spatial_mllm_web::testing::vggt_dpt_parity`. The heads take the reference
//! aggregator outputs; their activated outputs must match upstream within 1e-3 relative on the
//! f32 path and 1e-2 on the f16 path. Bad input (frames of different sizes, a token count that
//! does not fit the image size) is a clear error.

mod common;

use common::{gpu, load_params};
use spatial_mllm_web::gpu::{DType, Gpu};
use spatial_mllm_web::model::vggt::dpt::{DptHead, DptInput, DEPTH_HEAD, POINT_HEAD};
use spatial_mllm_web::model::vggt::LayerOutput;
use spatial_mllm_web::model::Params;
use spatial_mllm_web::testing::vggt_dpt_parity::{check_head, HeadInputs};

fn check_both(gpu: &Gpu) {
    let (params, cfg) = load_params(gpu, "vggt");
    let r = common::reference("vggt");
    for prefix in [DEPTH_HEAD, POINT_HEAD] {
        match pollster::block_on(check_head(gpu, &r, &params, &cfg, prefix, 2)) {
            Ok(d) => println!("[{:?}] {prefix}: {d}", gpu.act),
            Err(e) => panic!("[{:?}] {prefix}: {e}", gpu.act),
        }
    }
}

#[test]
fn dpt_heads_match_upstream_f32() {
    check_both(&gpu(false));
}

/// Fails on an adapter without shader-f16 unless ALLOW_NO_F16=1.
#[test]
fn dpt_heads_match_upstream_f16() {
    let gpu = gpu(true);
    if gpu.act != DType::F16 {
        assert_eq!(std::env::var("ALLOW_NO_F16").as_deref(), Ok("1"), "adapter {} has no shader-f16", gpu.info.name);
        return;
    }
    check_both(&gpu);
}

#[test]
fn bad_input_is_a_clear_error() {
    let gpu = gpu(false);
    let (params, cfg) = load_params(&gpu, "vggt");
    let r = common::reference("vggt");
    let inputs = HeadInputs::new(&gpu, &r, &cfg).unwrap();
    let head = DptHead::new(&gpu, &params, DEPTH_HEAD, &inputs.dims).unwrap();
    let layers = [&inputs.layers[0], &inputs.layers[1], &inputs.layers[2], &inputs.layers[3]];
    let expect = |frame_sizes: &[(usize, usize)], patch_start: usize, what: &str| {
        let e = head.forward(&gpu, &DptInput { layers, frame_sizes, patch_start }).err().unwrap_or_else(|| panic!("{what}: no error"));
        println!("{what}: {e}");
        e.to_string()
    };
    // Frames of different sizes.
    let e = expect(&[(42, 56), (42, 56), (56, 42)], inputs.patch_start, "different sizes");
    assert!(e.contains("different sizes"), "{e}");
    // Images whose patch grid does not match the token count (4x4 patches, 12 tokens per frame).
    let e = expect(&[(56, 56); 3], inputs.patch_start, "token count");
    assert!(e.contains("17 tokens") && e.contains("4x4 patches"), "{e}");
    // A patch start that leaves the wrong number of patch tokens.
    let e = expect(&[(42, 56); 3], 4, "patch start");
    assert!(e.contains("after 4 special tokens"), "{e}");
    // A frame count that disagrees with the tokens.
    let e = expect(&[(42, 56); 2], inputs.patch_start, "frame count");
    assert!(e.contains("2 frame sizes for 3 frames"), "{e}");
    // Layers of different shapes.
    let short = gpu.upload_act(&vec![0.0; 2 * 17 * 32], &[2, 17, 32]).unwrap();
    let short = LayerOutput { frame: short.clone(), global: short };
    let e = head
        .forward(&gpu, &DptInput { layers: [layers[0], &short, layers[2], layers[3]], frame_sizes: &[(42, 56); 3], patch_start: 5 })
        .err()
        .expect("mismatched layers");
    assert!(e.to_string().contains("aggregator layer 1 output"), "{e}");
    // A head name that does not exist.
    assert!(DptHead::new(&gpu, &params, "vggt.track_head.", &inputs.dims).is_err());
    // The head still works after the errors.
    println!("{}", pollster::block_on(check_head(&gpu, &r, &params, &cfg, POINT_HEAD, 2)).unwrap());
}

/// VGGT-1B's head (2 x 1024 input channels, features 256, projections 256 / 512 / 1024 / 1024)
/// with random f16 weights on `frames` frames of h x w px: every output must be finite. Returns
/// the seconds the last of `runs` forward passes took (the first also compiles the pipelines).
fn real_width_head(h: usize, w: usize, frames: usize, allow_f16: bool, runs: usize) -> f64 {
    use spatial_mllm_web::testing::Rng;
    use spatial_mllm_web::weights::layout::ModelKind;
    use spatial_mllm_web::weights::loader::GpuParam;
    use spatial_mllm_web::weights::shapes::{expected, VggtDims};
    use spatial_mllm_web::weights::{PackedWeight, Weight, WeightFormat};
    let gpu = gpu(allow_f16);
    let cfg = serde_json::json!({});
    let dims = VggtDims::from_config(ModelKind::Vggt, &cfg);
    let mut rng = Rng::new(7);
    let mut map = std::collections::HashMap::new();
    for e in expected(ModelKind::Vggt, &cfg).into_iter().filter(|e| e.name.starts_with(DEPTH_HEAD)) {
        let n: usize = e.shape.iter().product();
        let base = if e.name.ends_with("norm.weight") { 1.0 } else { 0.0 };
        let data: Vec<f32> = (0..n).map(|_| base + 0.02 * rng.normal()).collect();
        let p = if e.shape.len() == 1 {
            GpuParam::Vector(gpu.upload_f32(&data, &[n]).unwrap())
        } else {
            let (rows, cols) = (e.shape[0], n / e.shape[0]);
            GpuParam::Matrix(vec![Weight::upload(&gpu, &PackedWeight::pack(WeightFormat::F16, &data, rows, cols), &e.name).unwrap()])
        };
        map.insert(e.name, p);
    }
    let params = Params::new(map);
    let head = DptHead::new(&gpu, &params, DEPTH_HEAD, &dims).unwrap();
    let (ph, pw) = (h / 14, w / 14);
    let tokens = 5 + ph * pw;
    // Each token's 2048 features drawn in one row, then split into the frame and global halves.
    let mut layer = || {
        let cat = rng.normals(frames * tokens * 2048, 1.0);
        let half = |h: usize| cat.chunks(1024).skip(h).step_by(2).flatten().copied().collect::<Vec<f32>>();
        let up = |v: Vec<f32>| gpu.upload_act(&v, &[frames, tokens, 1024]).unwrap();
        LayerOutput { frame: up(half(0)), global: up(half(1)) }
    };
    let layers: Vec<_> = (0..4).map(|_| layer()).collect();
    let sizes = vec![(h, w); frames];
    let input = DptInput { layers: [&layers[0], &layers[1], &layers[2], &layers[3]], frame_sizes: &sizes, patch_start: 5 };
    let mut secs = 0.0;
    for _ in 0..runs {
        let t0 = std::time::Instant::now();
        let out = head.forward(&gpu, &input).unwrap();
        let depth = pollster::block_on(gpu.read_f32(&out.values)).unwrap();
        let conf = pollster::block_on(gpu.read_f32(&out.conf)).unwrap();
        secs = t0.elapsed().as_secs_f64();
        assert_eq!(out.values.shape, [frames, ph * 14, pw * 14, 1]);
        assert!(depth.iter().chain(&conf).all(|v| v.is_finite()), "non-finite outputs");
        let mean = depth.iter().map(|&v| v as f64).sum::<f64>() / depth.len() as f64;
        println!("[{:?}] {frames} x {h}x{w}: depth mean {mean:.4}, {:.2} s, buffer pool {:.1} MiB", gpu.act, secs, gpu.pooled_bytes() as f64 / (1 << 20) as f64);
    }
    secs
}

#[test]
fn real_widths_run() {
    real_width_head(42, 56, 1, false, 1);
    real_width_head(42, 56, 1, true, 1);
}
