//! The plain attention kernel of prefill and the encoders, chosen per device
//! (`kernels::attention_tune`, `gpu::attention_pick`): measured once over every candidate the
//! adapter can run and memoised; pinned or named in the environment instead; remembered in the
//! tuning store so that the next start on the adapter measures nothing. `Kernel::Auto` runs
//! exactly the chosen kernel (bit for bit the same output as asking for it by name), and each
//! candidate agrees with the f64 reference.

use spatial_mllm_web::gpu::{DType, Gpu, GpuOptions, PlainAttention, Recorder, TileSource};
use spatial_mllm_web::kernels::attention::{attention_with, Attention, HeadsView, Kernel};
use spatial_mllm_web::kernels::attention_tune::tune_attention;
use spatial_mllm_web::kernels::tuning_memo::{self, AttentionKernel, GemmTiling};
use spatial_mllm_web::native::tuning_store;
use spatial_mllm_web::testing::reference as cpu;
use spatial_mllm_web::testing::{as_stored, compare, Rng};

/// A device on the f16 path without matrix units (they would run `flash_coop` instead).
fn plain_gpu() -> Gpu {
    pollster::block_on(Gpu::new(GpuOptions { allow_f16: true, allow_subgroups: true, allow_coop_matrix: false, poison: false })).expect("a GPU adapter")
}

fn no_env() {
    if std::env::var("SPATIAL_MLLM_ATTENTION").is_ok_and(|s| !s.trim().is_empty()) {
        panic!("unset SPATIAL_MLLM_ATTENTION for this test: it measures");
    }
}

/// The measured choice is a candidate the adapter can run, every candidate timed, memoised on the
/// device; a pinned kernel is kept and not measured over, one the adapter cannot run refused.
#[test]
fn attention_kernel_is_measured_once() {
    no_env();
    let g = plain_gpu();
    let candidates = g.attention_candidates();
    assert!(!g.attention_decided());
    assert_eq!((g.attention_pick().kernel, g.attention_pick().source), (candidates[0], TileSource::Default));
    assert!(matches!(candidates[0], PlainAttention::Blocked { .. }) && candidates.contains(&PlainAttention::Tile), "{candidates:?}");
    let t0 = std::time::Instant::now();
    let p = pollster::block_on(tune_attention(&g)).unwrap();
    println!("{}: chose {p} in {:.0} ms", g.info.name, t0.elapsed().as_secs_f64() * 1e3);
    assert_eq!(p.source, TileSource::Measured);
    assert!(candidates.contains(&p.kernel));
    assert_eq!(p.timings.iter().map(|(k, _)| *k).collect::<Vec<_>>(), candidates, "every candidate measured: {p}");
    assert!(p.timings.iter().all(|(_, ms)| ms.is_finite() && *ms > 0.0), "{p}");
    // The winner is the default unless another beats it by the margin.
    let ms = |k| p.timings.iter().find(|(c, _)| *c == k).unwrap().1;
    assert!(p.kernel == candidates[0] || ms(p.kernel) < 0.95 * ms(candidates[0]), "{p}");
    assert!(p.timings.iter().all(|&(_, t)| ms(p.kernel) <= t || ms(candidates[0]) <= t / 0.95), "{p}");

    let t1 = std::time::Instant::now();
    let again = pollster::block_on(tune_attention(&g)).unwrap();
    assert!(t1.elapsed().as_secs_f64() < 0.05, "the second call measured again");
    assert_eq!((again.kernel, again.source), (p.kernel, p.source));

    let other = *candidates.iter().find(|k| **k != p.kernel).unwrap();
    g.pin_attention(other).unwrap();
    assert_eq!((g.attention_pick().kernel, g.attention_pick().source), (other, TileSource::Pinned));
    assert!(g.pin_attention(PlainAttention::Blocked { storage: 1 << 20 }).is_err());
    assert_eq!(pollster::block_on(tune_attention(&g)).unwrap().kernel, other, "a pinned kernel is not measured over");
    g.check().unwrap();
}

struct Shape {
    n: usize,
    hq: usize,
    hkv: usize,
    d: usize,
    causal: bool,
}

/// Auto runs the pinned kernel: its output equals, bit for bit, that of the kernel asked for by
/// name (and differs from the other candidates' in the last bits somewhere, or the check would
/// prove nothing), on VGGT's full heads of 64 and Qwen's causal heads of 128 at odd token counts.
#[test]
fn auto_runs_the_chosen_kernel() {
    let g = plain_gpu();
    let seed = std::env::var("KERNEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    println!("seed {seed}");
    let mut r = Rng::new(seed);
    let shapes = [Shape { n: 203, hq: 3, hkv: 3, d: 64, causal: false }, Shape { n: 97, hq: 16, hkv: 2, d: 128, causal: true }];
    let by_name = |k: PlainAttention| match k {
        PlainAttention::Tile => Kernel::Tile,
        PlainAttention::Blocked { storage } if storage <= 16384 => Kernel::BlockedMinStorage,
        PlainAttention::Blocked { .. } => Kernel::Blocked,
    };
    for s in &shapes {
        let q = as_stored(&g, &r.normals(s.n * s.hq * s.d, 1.0));
        let k = as_stored(&g, &r.normals(s.n * s.hkv * s.d, 1.0));
        let v = as_stored(&g, &r.normals(s.n * s.hkv * s.d, 1.0));
        let (qt, kt, vt) =
            (g.upload_act(&q, &[s.n, s.hq * s.d]).unwrap(), g.upload_act(&k, &[s.n, s.hkv * s.d]).unwrap(), g.upload_act(&v, &[s.n, s.hkv * s.d]).unwrap());
        let scale = 1.0 / (s.d as f32).sqrt();
        let a = Attention {
            q: HeadsView::dense(&qt, s.hq),
            k: HeadsView::dense(&kt, s.hkv),
            v: HeadsView::dense(&vt, s.hkv),
            head_dim: s.d,
            causal: s.causal,
            q_pos0: 0,
            segments: None,
            scale,
        };
        let run = |kernel| {
            let mut rec = Recorder::new(&g);
            let o = attention_with(&mut rec, &a, kernel).unwrap();
            rec.submit().unwrap();
            pollster::block_on(g.read_f32(&o)).unwrap()
        };
        let want = cpu::attention(&q, &k, &v, s.n, s.n, s.hq, s.hkv, s.d, scale as f64, |i, j| !s.causal || j <= i);
        let mut outputs = Vec::new();
        for kernel in g.attention_candidates() {
            g.pin_attention(kernel).unwrap();
            let auto = run(Kernel::Auto);
            assert_eq!(auto, run(by_name(kernel)), "Auto did not run {kernel} (d {})", s.d);
            let tol = if g.act == DType::F16 { 4e-3 } else { 1e-4 };
            println!("{}", compare(&format!("{kernel} d {}", s.d), &auto, &want, tol).unwrap_or_else(|e| panic!("{e} (seed {seed})")));
            outputs.push(auto);
        }
        assert!(outputs.windows(2).any(|w| w[0] != w[1]), "the candidates gave identical bits: the check above proves nothing");
    }
    g.check().unwrap();
}

/// The measured kernel is remembered per device in the tuning store beside the GEMM tiling: the
/// next device on the adapter takes it without measuring; a record it cannot use is measured
/// again and replaced; a kernel named in the environment is neither recalled nor stored.
#[test]
fn measured_attention_kernel_is_remembered_per_device() {
    no_env();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join(tuning_store::FILE);
    let read = || -> std::collections::BTreeMap<String, String> {
        serde_json::from_slice(&std::fs::read(&store).expect("the store was written")).expect("the store is JSON")
    };

    let first = plain_gpu();
    tuning_store::tune_device(&first, &store).unwrap();
    let p = first.attention_pick();
    assert_eq!(p.source, TileSource::Measured, "{p}");
    let key = tuning_memo::key(&AttentionKernel, &first);
    assert!(key.contains(&first.info.name) && key.contains("attention kernels"), "{key}");
    assert_ne!(key, tuning_memo::key(&GemmTiling, &first));
    let records = read();
    assert_eq!(records.get(&key), Some(&p.kernel.to_string()));
    assert_eq!(records.get(&tuning_memo::key(&GemmTiling, &first)), Some(&first.gemm_tile().to_string()), "both choices in one store");

    let second = plain_gpu();
    let t0 = std::time::Instant::now();
    let again = tuning_store::tune(&mut AttentionKernel, &second, &store).unwrap();
    assert_eq!((again.kernel, again.source, again.timings.len()), (p.kernel, TileSource::Remembered, 0));
    assert!(t0.elapsed().as_secs_f64() < 0.2, "recalling took {:?}", t0.elapsed());

    for bad in ["not a kernel", "blocked-1024k", "rows"] {
        let mut records = read();
        records.insert(key.clone(), bad.to_string());
        std::fs::write(&store, serde_json::to_vec(&records).unwrap()).unwrap();
        let fresh = tuning_store::tune(&mut AttentionKernel, &plain_gpu(), &store).unwrap();
        assert_eq!(fresh.source, TileSource::Measured, "{bad:?} was recalled");
        assert_eq!(read().get(&key), Some(&fresh.kernel.to_string()));
    }
    let pinned = plain_gpu();
    pinned.pin_attention(PlainAttention::Tile).unwrap();
    let before = std::fs::read(&store).unwrap();
    assert_eq!(tuning_store::tune(&mut AttentionKernel, &pinned, &store).unwrap().kernel, PlainAttention::Tile);
    assert_eq!(std::fs::read(&store).unwrap(), before);
}
