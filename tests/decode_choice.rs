//! The decode step's kernels chosen per device and model (`model::qwen::decode_choice`): a GPU
//! measures the folded, fused and separate steps at a short and a long context once and runs each
//! band with its winner; the plan is remembered in the tuning store keyed by the device and the
//! model's shape, so the next load measures nothing; a CPU adapter keeps its default unless a test
//! asks (`DecodeSteps::even_on_cpu`, as here on lavapipe). The plan's bands switch at
//! `LONG_CONTEXT` (counted in dispatches: separate 12-13 a layer, fused 5).

mod common;

use spatial_mllm_web::gpu::{Gpu, Recorder, TileSource};
use spatial_mllm_web::kernels::tuning_memo::{self, Tuned};
use spatial_mllm_web::model::qwen::decode_choice::{tune_decode, MEASURED_CONTEXTS};
use spatial_mllm_web::model::qwen::decode_plan::LONG_CONTEXT;
use spatial_mllm_web::model::qwen::{DecodeKernels, DecodePlan, DecodeSteps, KvCache, QwenConfig, TextModel};
use spatial_mllm_web::native::tuning_store;

fn no_env() {
    if std::env::var("SPATIAL_MLLM_DECODE").is_ok_and(|s| !s.trim().is_empty()) {
        panic!("unset SPATIAL_MLLM_DECODE for this test: it measures");
    }
}

/// The Qwen2.5-VL fixture's decoder (f32 package), as a user's package loads.
fn text_model(gpu: &Gpu) -> TextModel {
    let (params, config) = common::load_params(gpu, "qwen2.5-vl");
    let cfg = QwenConfig::from_json(&config).unwrap();
    TextModel::new(gpu, &cfg.text, &params).unwrap()
}

#[test]
fn decode_kernels_are_measured_per_model_and_remembered() {
    no_env();
    let gpu = common::gpu(false);
    let mut text = text_model(&gpu);
    let candidates = text.decode_candidates(&gpu);
    assert_eq!(candidates.len(), 3, "the fixture allows every step: {candidates:?}");
    assert_eq!(candidates[0], DecodeKernels::for_adapter(&gpu), "the adapter's default first");
    assert_eq!((text.decode, text.decode_source), (DecodePlan::all(candidates[0]), TileSource::Default));

    // lavapipe is a CPU adapter: the store's path keeps its default and stores nothing.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join(tuning_store::FILE);
    assert_eq!(gpu.info.device_type, "Cpu", "this test expects lavapipe");
    let c = tuning_store::tune(&mut DecodeSteps::new(&mut text), &gpu, &store).unwrap();
    assert_eq!((c.source, c.timings.len()), (TileSource::Default, 0));
    assert!(!store.exists());

    // Measured on request: every candidate at both contexts, each band's winner a candidate.
    let t0 = std::time::Instant::now();
    let c = tuning_store::tune(&mut DecodeSteps::even_on_cpu(&mut text), &gpu, &store).unwrap();
    println!("{}: {c} in {:.0} ms", gpu.info.name, t0.elapsed().as_secs_f64() * 1e3);
    assert_eq!(c.source, TileSource::Measured);
    assert_eq!((text.decode, text.decode_source), (c.plan, TileSource::Measured));
    let measured: Vec<(usize, DecodeKernels)> = c.timings.iter().map(|&(ctx, k, _)| (ctx, k)).collect();
    let want: Vec<(usize, DecodeKernels)> = MEASURED_CONTEXTS.iter().flat_map(|&ctx| candidates.iter().map(move |&k| (ctx, k))).collect();
    assert_eq!(measured, want);
    assert!(c.timings.iter().all(|(_, _, ms)| ms.is_finite() && *ms > 0.0), "{c}");
    for (band, ctx) in MEASURED_CONTEXTS.iter().enumerate() {
        let chosen = [c.plan.short, c.plan.long][band];
        let ms = |k| c.timings.iter().find(|&&(x, kk, _)| x == *ctx && kk == k).unwrap().2;
        assert!(chosen == candidates[0] || ms(chosen) < 0.95 * ms(candidates[0]), "band {band}: {c}");
    }
    let key = tuning_memo::key(&DecodeSteps::new(&mut text), &gpu);
    assert!(key.contains("text model: hidden") && key.contains("attention f32"), "{key}");
    let read = || -> std::collections::BTreeMap<String, String> { serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap() };
    assert_eq!(read().get(&key), Some(&c.plan.to_string()));

    // Memoised on the model: asked again, nothing is measured.
    let again = tuning_store::tune(&mut DecodeSteps::even_on_cpu(&mut text), &gpu, &store).unwrap();
    assert_eq!((again.plan, again.source, again.timings.len()), (c.plan, TileSource::Measured, 0));

    // The next load of the same model shape recalls the plan without measuring.
    let mut second = text_model(&gpu);
    let t1 = std::time::Instant::now();
    let recalled = tuning_store::tune(&mut DecodeSteps::even_on_cpu(&mut second), &gpu, &store).unwrap();
    assert_eq!((recalled.plan, recalled.source, second.decode), (c.plan, TileSource::Remembered, c.plan));
    assert!(t1.elapsed().as_secs_f64() < 0.2, "recalling took {:?}", t1.elapsed());

    // A record this model cannot use is measured again and replaced.
    for bad in ["quick", "folded/rows"] {
        let mut records = read();
        records.insert(key.clone(), bad.to_string());
        std::fs::write(&store, serde_json::to_vec(&records).unwrap()).unwrap();
        let mut third = text_model(&gpu);
        let fresh = tuning_store::tune(&mut DecodeSteps::even_on_cpu(&mut third), &gpu, &store).unwrap();
        assert_eq!(fresh.source, TileSource::Measured, "{bad:?} was recalled");
        assert_eq!(read().get(&key), Some(&fresh.plan.to_string()));
    }

    // Kernels set by hand are neither measured over nor stored.
    let mut pinned = text_model(&gpu);
    (pinned.decode, pinned.decode_source) = (DecodePlan::all(DecodeKernels::Fused), TileSource::Pinned);
    let before = std::fs::read(&store).unwrap();
    let kept = pollster::block_on(tune_decode(&gpu, &mut pinned)).unwrap();
    assert_eq!((kept.plan, kept.source), (DecodePlan::all(DecodeKernels::Fused), TileSource::Pinned));
    assert!(!DecodeSteps::even_on_cpu(&mut pinned).needs_measuring(&gpu));
    assert_eq!(std::fs::read(&store).unwrap(), before);
    gpu.check().unwrap();
}

/// A plan runs its short kernels below `LONG_CONTEXT` cached tokens and its long ones from there.
#[test]
fn a_plan_switches_kernels_at_the_long_context() {
    let gpu = common::gpu(false);
    let mut text = text_model(&gpu);
    text.decode = DecodePlan { short: DecodeKernels::Separate, long: DecodeKernels::Fused };
    let layers = text.cfg.layers as u64;
    let mut cache = KvCache::new(&gpu, &text.cfg, LONG_CONTEXT + 1).unwrap();
    let x = gpu.upload_act(&vec![0.1; text.cfg.hidden], &[1, text.cfg.hidden]).unwrap();
    let step = |cache: &mut KvCache, past: usize| {
        cache.len = past;
        let pos = gpu.upload_i32(&[past as i32; 3], &[1, 3]).unwrap();
        let mut rec = Recorder::new(&gpu);
        text.decode_logits(&mut rec, x.clone(), &pos, cache).unwrap();
        let dispatches = rec.dispatches as u64;
        rec.submit().unwrap();
        pollster::block_on(gpu.finish()).unwrap();
        dispatches
    };
    let short = step(&mut cache, LONG_CONTEXT - 1);
    let long = step(&mut cache, LONG_CONTEXT);
    println!("{short} dispatches at {} cached tokens, {long} at {LONG_CONTEXT}", LONG_CONTEXT - 1);
    assert!(short >= 12 * layers, "separate below the long context: {short} dispatches for {layers} layers");
    assert!(long <= 5 * layers + 4, "fused from the long context: {long} dispatches for {layers} layers");
    gpu.check().unwrap();
}
