//! The GPU runtime itself (issue 2, part 2): negotiated limits and recorded features, the buffer
//! pool, the pipeline cache, one submission per recorded pass, bind groups reused across
//! submissions with fresh parameters (device loss: `tests/device_loss.rs`). No adapter fails.

use std::sync::Arc;

use spatial_mllm_web::gpu::{DType, GemmTile, Gpu, GpuOptions, Recorder, Tensor};
use spatial_mllm_web::kernels::elementwise::{add, relu_columns, silu_mul};
use spatial_mllm_web::kernels::matmul::{linear, Activation, Epilogue, Fused, MatmulChoice};
use spatial_mllm_web::weights::{PackedWeight, Weight, WeightFormat};

fn gpu() -> Gpu {
    pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, allow_coop_matrix: true, poison: true }))
        .unwrap_or_else(|e| panic!("the runtime tests need a GPU adapter: {e}"))
}

fn rng_values(seed: u64, n: usize) -> Vec<f32> {
    let mut r = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| r.f32() * 2.0 - 1.0).collect()
}

fn read(gpu: &Gpu, t: &Tensor) -> Vec<f32> {
    pollster::block_on(gpu.read_f32(t)).unwrap()
}

#[test]
fn device_takes_the_adapters_limits_and_records_its_features() {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).expect("a GPU adapter");
    let offered = adapter.limits();
    let features = adapter.features();
    let gpu = pollster::block_on(Gpu::from_adapter(adapter, GpuOptions { allow_f16: true, allow_subgroups: true, allow_coop_matrix: true, poison: false })).unwrap();
    assert_eq!(gpu.limits.max_storage_buffer_binding_size, offered.max_storage_buffer_binding_size);
    assert_eq!(gpu.limits.max_buffer_size, offered.max_buffer_size);
    assert_eq!(gpu.limits.max_compute_workgroup_storage_size, offered.max_compute_workgroup_storage_size);
    assert_eq!(gpu.info.max_binding, offered.max_storage_buffer_binding_size);
    assert_eq!(gpu.info.has_f16, features.contains(wgpu::Features::SHADER_F16));
    assert_eq!(gpu.info.has_subgroups, features.contains(wgpu::Features::SUBGROUP));
    assert_eq!(gpu.info.has_timestamps, features.contains(wgpu::Features::TIMESTAMP_QUERY));
    assert_eq!(gpu.device.features().contains(wgpu::Features::SHADER_F16), gpu.info.has_f16);
    assert_eq!(gpu.act, if gpu.info.has_f16 { DType::F16 } else { DType::F32 });
    // Declining f16 keeps the device on the f32 path whatever the adapter offers.
    let f32_only = pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: false, allow_coop_matrix: true, poison: false })).unwrap();
    assert!(!f32_only.info.has_f16 && !f32_only.info.has_subgroups);
    assert_eq!(f32_only.act, DType::F32);
}

#[test]
fn pool_reuses_a_dropped_buffer_of_the_same_bucket() {
    let gpu = gpu();
    // Above 1 MiB buckets step by a sixteenth of the power of two: under 12.5 % waste.
    let a = gpu.alloc(&[1000, 370], DType::F32).unwrap();
    let raw = a.buf.raw.clone();
    let bucket = raw.size();
    assert!((1000 * 370 * 4..1000 * 370 * 4 * 9 / 8).contains(&bucket), "bucket {bucket}");
    let pooled = gpu.pooled_bytes();
    let created = gpu.stats.activation_bytes();
    drop(a);
    assert_eq!(gpu.pooled_bytes(), pooled + bucket);
    // A slightly different shape in the same bucket gets the same buffer and creates nothing.
    let b = gpu.alloc(&[999, 370], DType::F32).unwrap();
    assert_eq!(b.buf.raw, raw);
    assert_eq!(gpu.pooled_bytes(), pooled);
    assert_eq!(gpu.stats.activation_bytes(), created);
    // While it is in use, the next one is new.
    let c = gpu.alloc(&[999, 370], DType::F32).unwrap();
    assert_ne!(c.buf.raw, raw);
    drop((b, c));
    gpu.clear_pool();
    assert_eq!(gpu.pooled_bytes(), 0);
}

/// Issue 17: a stage that ends frees the pool's idle buffers (`Gpu::trim_pool`), and the bind
/// groups over them that would keep them alive; buffers in use stay, and the high-water mark
/// (live + pooled buffers) keeps the peak.
#[test]
fn trimming_the_pool_frees_idle_buffers_and_keeps_the_peak() {
    let gpu = gpu();
    gpu.clear_pool();
    let n = 40;
    let x = gpu.upload_f32(&rng_values(3, n), &[1, n]).unwrap();
    let w = Weight::upload(&gpu, &PackedWeight::pack(WeightFormat::Q8, &rng_values(4, n * n), n, n), "w").unwrap();
    let mut rec = Recorder::new(&gpu);
    let y = linear(&mut rec, &x, &w, Epilogue::none()).unwrap();
    rec.submit().unwrap();
    read(&gpu, &y);
    let big = gpu.alloc(&[1000, 370], DType::F32).unwrap();
    let held = x.buf.size() + y.buf.size() + big.buf.size();
    assert_eq!(gpu.stats.held_bytes(), held);
    let cached = gpu.cached_bind_groups();
    assert!(cached >= 1);
    drop((x, y));
    gpu.trim_pool();
    assert_eq!(gpu.pooled_bytes(), 0);
    assert_eq!(gpu.stats.held_bytes(), big.buf.size(), "the buffer in use stays");
    assert_eq!(gpu.stats.activation_bytes(), held, "the peak stays");
    assert_eq!(gpu.cached_bind_groups(), cached - 1, "the group over the freed buffers is forgotten");
    drop(big);
    gpu.clear_pool();
    assert_eq!((gpu.stats.held_bytes(), gpu.stats.activation_bytes()), (0, 0));
}

#[test]
fn pipeline_cache_compiles_each_variant_once() {
    let gpu = gpu();
    let gemv = |format| MatmulChoice {
        act: DType::F32,
        gemv: true,
        format,
        bias: false,
        activation: Activation::None,
        mul: false,
        add: false,
        k4: false,
        tile: GemmTile::DEFAULT,
        fused: Fused::None,
    };
    let (c1, c2) = (gemv(WeightFormat::F16), gemv(WeightFormat::Q8));
    let before = gpu.pipeline_count();
    let p1 = c1.launch().pipeline(&gpu);
    let again = c1.launch().pipeline(&gpu);
    assert!(Arc::ptr_eq(&p1, &again));
    assert_eq!(gpu.pipeline_count(), before + 1);
    let p2 = c2.launch().pipeline(&gpu);
    assert!(!Arc::ptr_eq(&p1, &p2));
    assert_eq!(gpu.pipeline_count(), before + 2);
    // Flag order does not make a new variant.
    let l1 = c1.launch();
    let mut reordered = l1.clone();
    reordered.variant.flags.reverse();
    assert_ne!(reordered.variant.flags, l1.variant.flags);
    assert!(Arc::ptr_eq(&p1, &reordered.pipeline(&gpu)));
    pollster::block_on(gpu.finish()).unwrap(); // both compiled without a WGSL error
}

/// One decode-like step: y = silu(x W1ᵀ) * (x W2ᵀ) + x, on the CPU too.
fn step(rec: &mut Recorder, x: &Tensor, w1: &Weight, w2: &Weight) -> Tensor {
    let g = linear(rec, x, w1, Epilogue::none()).unwrap();
    let u = linear(rec, x, w2, Epilogue::none()).unwrap();
    let h = silu_mul(rec, &g, &u).unwrap();
    add(rec, &h, x).unwrap()
}

fn step_cpu(x: &[f32], w1: &[f32], w2: &[f32], n: usize) -> Vec<f64> {
    let dot = |w: &[f32], r: usize| (0..n).map(|k| w[r * n + k] as f64 * x[k] as f64).sum::<f64>();
    (0..n)
        .map(|r| {
            let (g, u) = (dot(w1, r), dot(w2, r));
            g / (1.0 + (-g).exp()) * u + x[r] as f64
        })
        .collect()
}

#[test]
fn recorder_submits_a_pass_once_and_a_repeated_step_creates_no_bind_groups() {
    let gpu = gpu();
    let n = 77;
    let (w1v, w2v) = (rng_values(1, n * n), rng_values(2, n * n));
    let w1 = Weight::upload(&gpu, &PackedWeight::pack(WeightFormat::F16, &w1v, n, n), "w1").unwrap();
    let w2 = Weight::upload(&gpu, &PackedWeight::pack(WeightFormat::F16, &w2v, n, n), "w2").unwrap();
    let (w1r, w2r) = (PackedWeight::pack(WeightFormat::F16, &w1v, n, n).unpack(), PackedWeight::pack(WeightFormat::F16, &w2v, n, n).unpack());
    for token in 0..4u64 {
        // New input values each step, in a buffer the pool hands out again.
        let xv = rng_values(100 + token, n);
        let x = gpu.upload_f32(&xv, &[1, n]).unwrap();
        let before = gpu.stats.snapshot();
        let mut rec = Recorder::new(&gpu);
        let y = step(&mut rec, &x, &w1, &w2);
        rec.submit().unwrap();
        let got = read(&gpu, &y);
        let d = gpu.stats.snapshot() - before;
        assert_eq!(d.dispatches, 4, "token {token}");
        assert_eq!(d.submits, 2, "token {token}: the pass and the readback, one submission each");
        match token {
            0 => assert_eq!(d.bind_groups, 4, "the first step creates one bind group per dispatch"),
            // The first step created its buffers; later ones take them from the pool in the
            // pool's order, the same each step from here on.
            1 => assert!(d.bind_groups <= 4),
            _ => assert_eq!(d.bind_groups, 0, "token {token}: the step repeats the last one's layout"),
        }
        let want = step_cpu(&xv, &w1r, &w2r, n);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((*g as f64 - w).abs() < 1e-4 * (1.0 + w.abs()), "token {token} [{i}]: {g} vs {w}");
        }
    }
}

#[test]
fn cached_bind_groups_see_each_submissions_parameters() {
    let gpu = gpu();
    let (rows, cols) = (3, 29);
    let av = rng_values(7, rows * cols);
    let a = gpu.upload_f32(&av, &[rows, cols]).unwrap();
    for (i, range) in [0..5, 11..29, 3..4, 0..29, 20..20].into_iter().enumerate() {
        let before = gpu.stats.snapshot();
        let mut rec = Recorder::new(&gpu);
        let y = relu_columns(&mut rec, &a, range.clone()).unwrap();
        rec.submit().unwrap();
        let got = read(&gpu, &y);
        drop(y);
        if i > 0 {
            assert_eq!((gpu.stats.snapshot() - before).bind_groups, 0, "run {i} reuses the bind group");
        }
        for (j, (&g, &x)) in got.iter().zip(&av).enumerate() {
            let want = if range.contains(&(j % cols)) { x.max(0.0) } else { x };
            assert_eq!(g, want, "columns {range:?}, element {j}");
        }
    }
}

#[test]
fn dropped_weights_leave_the_bind_group_cache() {
    let gpu = gpu();
    let n = 40;
    let x = gpu.upload_f32(&rng_values(3, n), &[1, n]).unwrap();
    let w = Weight::upload(&gpu, &PackedWeight::pack(WeightFormat::Q8, &rng_values(4, n * n), n, n), "w").unwrap();
    let mut rec = Recorder::new(&gpu);
    let y = linear(&mut rec, &x, &w, Epilogue::none()).unwrap();
    rec.submit().unwrap();
    read(&gpu, &y);
    let cached = gpu.cached_bind_groups();
    assert!(cached >= 1);
    drop(w);
    assert_eq!(gpu.cached_bind_groups(), cached - 1, "the group over the dropped weight is forgotten");
    gpu.clear_pool();
    assert_eq!(gpu.cached_bind_groups(), 0);
}
