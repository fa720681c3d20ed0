//! Device loss (issue 2, part 2): once the device is gone, submitting and reading back fail at
//! once with `DeviceLost`, whose message says what to do, instead of hanging. In a process of
//! its own: on an H200, destroying one device while other tests' devices ran in the same process
//! once left those hanging.

use std::time::{Duration, Instant};

use spatial_mllm_web::gpu::{Gpu, GpuError, GpuOptions, Recorder};
use spatial_mllm_web::kernels::elementwise::add;

#[test]
fn a_lost_device_is_a_prompt_error_not_a_hang() {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, allow_coop_matrix: true, poison: true }))
        .unwrap_or_else(|e| panic!("the device-loss test needs a GPU adapter: {e}"));
    let x = gpu.upload_f32(&(0..1000).map(|i| i as f32).collect::<Vec<_>>(), &[10, 100]).unwrap();
    let mut rec = Recorder::new(&gpu);
    let y = add(&mut rec, &x, &x).unwrap();
    gpu.destroy();
    let t0 = Instant::now();
    match rec.submit() {
        Err(GpuError::DeviceLost(_)) => {}
        other => panic!("submit after loss: {other:?}"),
    }
    match pollster::block_on(gpu.read_f32(&y)) {
        Err(GpuError::DeviceLost(_)) => {}
        other => panic!("readback after loss: {:?}", other.map(|v| v.len())),
    }
    assert!(gpu.is_lost());
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    let msg = GpuError::DeviceLost("x".into()).to_string();
    assert!(msg.contains("restarted"), "the message says what to do: {msg}");
}
