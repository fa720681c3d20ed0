//! Native kernel suite: every case of `testing::cases()` on the f32 path and on the f16 path, one
//! test per case and path, on the first Vulkan/Metal/DX12 adapter (Mesa lavapipe in CI). Each test
//! runs every row of its case (past failures), prints the rows (variables, max error, tolerance,
//! ok) and fails at the end if any row failed. No adapter is a failure. `KERNEL_SEED` replays a
//! seed; `ALLOW_NO_F16=1` lets the f16 tests pass on an adapter without shader-f16 (they fail
//! otherwise, so that CI never reports an untested path as green).

use spatial_mllm_web::gpu::{DType, Gpu, GpuOptions};
use spatial_mllm_web::testing::{cases, run_case};

fn seed() -> u64 {
    std::env::var("KERNEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64)
}

fn check(name: &str, f16: bool) {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: f16, allow_subgroups: true, allow_coop_matrix: true, poison: true }))
        .unwrap_or_else(|e| panic!("kernel tests need a GPU adapter: {e}"));
    if f16 && gpu.act != DType::F16 {
        if std::env::var("ALLOW_NO_F16").as_deref() == Ok("1") {
            println!("{name}: adapter {} has no shader-f16; f16 path NOT tested (ALLOW_NO_F16=1)", gpu.info.name);
            return;
        }
        panic!("adapter {} has no shader-f16, so the f16 path cannot be tested (set ALLOW_NO_F16=1 to accept)", gpu.info.name);
    }
    let case = cases().into_iter().find(|c| c.name == name).expect("unknown case");
    let seed = seed();
    let r = pollster::block_on(run_case(&gpu, &case, seed));
    let path = if f16 { "f16" } else { "f32" };
    println!("[{path}] {name} ({}) on {}, seed {seed} (replay: KERNEL_SEED={seed}): {}", case.op, gpu.info.name, r.summary());
    print!("{}", r.table());
    assert!(r.ok(), "{name} failed on {} ({:?} path): {}", gpu.info.name, gpu.act, r.summary());
}

/// One test per case and path; `LISTED` is the list, checked against `testing::cases()` below.
macro_rules! kernel_tests {
    ($($name:ident),* $(,)?) => {
        const LISTED: &[&str] = &[$(stringify!($name)),*];
        mod f32_path { $( #[test] fn $name() { super::check(stringify!($name), false) } )* }
        mod f16_path { $( #[test] fn $name() { super::check(stringify!($name), true) } )* }
    };
}

kernel_tests!(
    matmul_f16,
    matmul_q8,
    matmul_q4,
    decode_qkv_rope,
    decode_gate_up,
    decode_lm_head,
    decode_o_combined,
    decode_folded_attention,
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
    copy_words,
);

/// The tests above are exactly the suite's cases, in its order: a case added to
/// `testing::cases()` without a test here (or a test whose case is gone) fails.
#[test]
fn tests_are_the_suite() {
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    assert_eq!(LISTED, names.as_slice(), "tests/kernels.rs must list exactly testing::cases()");
}

/// Every case has rows, each with a label, and the cases that `bench kernels` times have perf
/// rows with bytes at both scales.
#[test]
fn cases_are_well_formed() {
    use spatial_mllm_web::testing::Scale;
    let mut perf = 0;
    for c in cases() {
        let rows = c.rows();
        assert!(!rows.is_empty(), "{} has no rows", c.name);
        assert!(rows.iter().all(|r| !r.label.is_empty()), "{} has an unlabelled row", c.name);
        for scale in [Scale::Small, Scale::Full] {
            for r in c.perf_rows(scale) {
                assert!((r.bytes)(2.0) > 0.0 && r.flops > 0.0, "{} {}: no bytes or FLOPs", c.name, r.label);
                perf += 1;
            }
        }
    }
    assert!(perf > 0, "no case has benchmark rows");
}

/// A case goes on past a failed row and reports every row: a row whose rule fails, a row whose
/// output is never written (poisoned with NaN), and a row whose setup fails, between passing rows.
#[test]
fn a_case_reports_every_row_past_failures() {
    use spatial_mllm_web::gpu::Recorder;
    use spatial_mllm_web::testing::cases::{Def, Setup};
    use spatial_mllm_web::testing::{KernelCase, Tol};
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, allow_coop_matrix: true, poison: true })).expect("a GPU adapter");
    let def: Def<usize> = Def::new(
        || (0..5).collect(),
        |i| format!("row {i}"),
        |_| Tol::same(1e-6),
        |g, _, &i| {
            let x = g.upload_f32(&[1.0, 2.0, 3.0], &[3]).map_err(|e| e.to_string())?;
            match i {
                1 => Ok(Setup::rule(move |_: &mut Recorder| Ok(vec![x.clone()]), |_| Err("the rule says no".into()))),
                2 => Ok(Setup::one(|rec: &mut Recorder| rec.gpu.alloc_act(&[3]), || vec![1.0, 2.0, 3.0])),
                3 => Err("setup failed".into()),
                _ => Ok(Setup::one(move |_: &mut Recorder| Ok(x.clone()), || vec![1.0, 2.0, 3.0])),
            }
        },
    );
    let case = KernelCase::new("failing", "none", def);
    let r = pollster::block_on(run_case(&gpu, &case, 1));
    print!("{}", r.table());
    let ok: Vec<bool> = r.rows.iter().map(|row| row.ok).collect();
    assert_eq!(ok, [true, false, false, false, true], "{}", r.summary());
    assert!(r.rows[1].detail.contains("the rule says no") && r.rows[3].detail.contains("setup failed"), "{}", r.summary());
    assert!(r.rows[2].detail.contains("unwritten"), "a poisoned output must fail: {}", r.rows[2].detail);
    assert!(!r.ok() && r.failed() == 3);
}

/// The benchmarks' GPU timer: it measures the recording (more work, more time) and never more
/// than the wall clock around it; without timestamp queries there is no timer.
#[test]
fn gpu_timer_measures_the_recording() {
    use spatial_mllm_web::gpu::{GpuTimer, Recorder};
    use spatial_mllm_web::kernels::elementwise::add;
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, allow_coop_matrix: true, poison: false })).expect("a GPU adapter");
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
