//! VGGT's camera head against the upstream code (tests/fixtures/vggt), natively; the check lives
//! in `spatial_mllm_web::testing::vggt_camera_parity` so the browser harness can run it too. The
//! head gets the reference's last aggregator output; its pose encoding must match the reference's
//! within 1e-3 relative on the f32 path and 1e-2 on the f16 path, and bad input is a clear error.

mod common;

use std::sync::Arc;

use common::gpu;

use spatial_mllm_web::gpu::{DType, Recorder, Tensor};
use spatial_mllm_web::model::vggt::camera::{CameraConfig, CameraHead};
use spatial_mllm_web::model::vggt::LayerOutput;
use spatial_mllm_web::model::ModelError;
use spatial_mllm_web::testing::vggt_camera_parity::{aggregator_output, check_camera_head, run_head};
use spatial_mllm_web::weights::layout::ModelKind;

#[test]
fn camera_head_matches_upstream() {
    let gpu = gpu(false);
    let (params, cfg) = common::load_params(&gpu, "vggt");
    let r = pollster::block_on(check_camera_head(&gpu, &common::reference("vggt"), &params, &cfg));
    println!("[f32] camera head on {}: {}", gpu.info.name, r.as_ref().unwrap_or_else(|e| e));
    r.unwrap();
}

/// Fails on an adapter without shader-f16 unless ALLOW_NO_F16=1.
#[test]
fn camera_head_f16_path_stays_close_to_upstream() {
    let gpu = gpu(true);
    if gpu.act != DType::F16 {
        assert_eq!(std::env::var("ALLOW_NO_F16").as_deref(), Ok("1"), "adapter {} has no shader-f16", gpu.info.name);
        return;
    }
    let (params, cfg) = common::load_params(&gpu, "vggt");
    let r = pollster::block_on(check_camera_head(&gpu, &common::reference("vggt"), &params, &cfg));
    println!("[f16] camera head on {}: {}", gpu.info.name, r.as_ref().unwrap_or_else(|e| e));
    r.unwrap();
}

/// Tokens of the wrong width, zero frames, a tensor that is not [frames, tokens, width], a config
/// that disagrees with the weights: each a clear error; the head still works after.
#[test]
fn bad_input_is_a_clear_error() {
    let gpu = gpu(false);
    let (params, cfg) = common::load_params(&gpu, "vggt");
    let ccfg = CameraConfig::from_config(ModelKind::Vggt, &cfg);
    let head = CameraHead::new(&ccfg, &params).unwrap();
    let d = ccfg.dim;
    // Both halves the same tensor.
    let run = |t: &Tensor| -> ModelError {
        let mut rec = Recorder::new(&gpu);
        head.forward(&mut rec, &LayerOutput { frame: t.clone(), global: t.clone() }).expect_err("bad input must fail")
    };
    let narrow = gpu.upload_act(&vec![0.5; 3 * 17 * (d / 4)], &[3, 17, d / 4]).unwrap();
    let e = run(&narrow);
    assert!(matches!(e, ModelError::Input(_)) && e.to_string().contains(&format!("{} wide", d / 4)), "{e}");
    println!("{e}");
    let some = gpu.upload_act(&vec![0.5; 17 * d / 2], &[1, 17, d / 2]).unwrap();
    let mismatched = LayerOutput { frame: some.clone(), global: narrow.clone() };
    let e = head.forward(&mut Recorder::new(&gpu), &mismatched).expect_err("halves of different shapes must fail");
    assert!(matches!(e, ModelError::Input(_)), "{e}");
    println!("{e}");
    let empty = Tensor { buf: Arc::clone(&some.buf), shape: vec![0, 17, d / 2], dtype: some.dtype };
    let e = run(&empty);
    assert!(matches!(e, ModelError::Input(_)) && e.to_string().contains("no tokens"), "{e}");
    println!("{e}");
    let e = run(&some.reshape(&[17, d / 2]));
    assert!(matches!(e, ModelError::Input(_)) && e.to_string().contains("[frames, tokens per frame"), "{e}");
    println!("{e}");

    let mut wrong = ccfg.clone();
    wrong.mlp += 4;
    let e = CameraHead::new(&wrong, &params).err().expect("a config that disagrees with the weights must fail");
    assert!(e.to_string().contains("mlp.fc1.weight"), "{e}");
    let mut wrong = ccfg.clone();
    wrong.heads = 5;
    let e = CameraHead::new(&wrong, &params).err().expect("heads that do not divide the width must fail");
    assert!(matches!(e, ModelError::Config(_)), "{e}");

    // The head still answers after the errors.
    let (tokens, shape) = aggregator_output(&common::reference("vggt"), 3).unwrap();
    let pose = pollster::block_on(run_head(&gpu, &head, &tokens, shape)).unwrap();
    assert_eq!(pose.len(), 3 * 9);
    assert!(pose.iter().all(|v| v.is_finite()));
}
