//! Native kernel suite: every case of `testing::all_cases` on the f32 path and on the f16 path,
//! on the first Vulkan/Metal/DX12 adapter (Mesa lavapipe in CI). No adapter is a failure.
//! `KERNEL_SEED` replays a seed; `ALLOW_NO_F16=1` lets the f16 tests pass on an adapter without
//! shader-f16 (they fail otherwise, so that CI never reports an untested path as green).

use spatial_mllm_web::gpu::{DType, Gpu, GpuOptions};
use spatial_mllm_web::testing::{all_cases, cases::run_case};

fn seed() -> u64 {
    std::env::var("KERNEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64)
}

fn check(name: &str, f16: bool) {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: f16, allow_subgroups: true, poison: true }))
        .unwrap_or_else(|e| panic!("kernel tests need a GPU adapter: {e}"));
    if f16 && gpu.act != DType::F16 {
        if std::env::var("ALLOW_NO_F16").as_deref() == Ok("1") {
            println!("{name}: adapter {} has no shader-f16; f16 path NOT tested (ALLOW_NO_F16=1)", gpu.info.name);
            return;
        }
        panic!("adapter {} has no shader-f16, so the f16 path cannot be tested (set ALLOW_NO_F16=1 to accept)", gpu.info.name);
    }
    let case = all_cases().into_iter().find(|c| c.name == name).expect("unknown case");
    let seed = seed();
    let r = pollster::block_on(run_case(&gpu, &case, seed));
    println!("[{}] {name} on {}: {}", if f16 { "f16" } else { "f32" }, gpu.info.name, r.detail);
    assert!(r.ok, "{name} failed on {} ({:?} path): {}", gpu.info.name, gpu.act, r.detail);
}

macro_rules! kernel_tests {
    ($($name:ident),* $(,)?) => {
        mod f32_path { $( #[test] fn $name() { super::check(stringify!($name), false) } )* }
        mod f16_path { $( #[test] fn $name() { super::check(stringify!($name), true) } )* }
    };
}

kernel_tests!(
    matmul_f16,
    matmul_q8,
    matmul_q4,
    attention_causal_gqa_d128,
    attention_full_d64,
    attention_varlen_d80,
    rms_norm,
    layer_norm,
    qk_norm_inplace,
    rope_variants,
    elementwise,
    modulate,
    embed,
    argmax,
    sample_top_k_top_p,
    repetition_penalty,
    gather_rows_place_cols,
    regroup_connector,
    weight_slice_rows,
    conv2d,
    conv_transpose2d,
    bilinear,
    head_activation,
);

/// Every case of the suite has a native test above.
#[test]
fn suite_is_covered() {
    let listed = [
        "matmul_f16",
        "matmul_q8",
        "matmul_q4",
        "attention_causal_gqa_d128",
        "attention_full_d64",
        "attention_varlen_d80",
        "rms_norm",
        "layer_norm",
        "qk_norm_inplace",
        "rope_variants",
        "elementwise",
        "modulate",
        "embed",
        "argmax",
        "sample_top_k_top_p",
        "repetition_penalty",
        "gather_rows_place_cols",
        "regroup_connector",
        "weight_slice_rows",
        "conv2d",
        "conv_transpose2d",
        "bilinear",
        "head_activation",
    ];
    for c in all_cases() {
        assert!(listed.contains(&c.name), "case {} has no native test", c.name);
    }
}

/// The benchmarks' GPU timer: it measures the recording (more work, more time) and never more
/// than the wall clock around it; without timestamp queries there is no timer.
#[test]
fn gpu_timer_measures_the_recording() {
    use spatial_mllm_web::gpu::{GpuTimer, Recorder};
    use spatial_mllm_web::kernels::elementwise::add;
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, poison: false })).expect("a GPU adapter");
    let Some(timer) = GpuTimer::new(&gpu).unwrap() else {
        assert!(!gpu.info.has_timestamps, "the adapter has timestamp queries but no timer was made");
        return;
    };
    let x = gpu.upload_f32(&vec![1.0; 1 << 20], &[1024, 1024]).unwrap();
    let measure = |reps: usize| {
        let mut rec = Recorder::timed(&gpu, &timer);
        let mut y = add(&mut rec, &x, &x).unwrap();
        for _ in 1..reps {
            y = add(&mut rec, &y, &x).unwrap();
        }
        let t0 = std::time::Instant::now();
        rec.submit().unwrap();
        pollster::block_on(gpu.finish()).unwrap();
        let wall = t0.elapsed().as_secs_f64() * 1e3;
        let ms = pollster::block_on(timer.elapsed_ms(&gpu)).unwrap();
        assert_eq!(pollster::block_on(gpu.read_f32(&y)).unwrap()[12345], (reps + 1) as f32);
        assert!(ms > 0.0 && ms <= wall * 1.01 + 0.01, "{reps} adds: GPU {ms} ms, wall clock {wall} ms");
        ms
    };
    let (one, many) = (measure(1), measure(40));
    assert!(many > 4.0 * one, "40 adds took {many} ms on the GPU, one took {one} ms");
}
