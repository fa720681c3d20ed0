//! The fused decode step (src/kernels/decode.rs: RMSNorm folded into the q/k/v and gate/up GEMVs,
//! q/k/v + bias + M-RoPE + the KV-cache write in one pass, SiLU * up in the gate/up GEMV, the
//! attention's key ranges merged in the o projection) against the separate kernels, on the
//! Qwen2.5-VL fixture in every weight format and on both precision paths: the decoder's output
//! and every layer's keys and values must be identical to the bit, for one and for several rows,
//! over a short cache (one key range) and a long one (split into ranges), with the final norm
//! folded into an lm_head of one part and of three.
//! The folded step (src/kernels/fold.rs: the attention in the q/k/v pass, 4 dispatches a layer)
//! is not bit-identical, since this step's keys join the softmax last: its logits must stay
//! within a small fraction of the separate kernels' scale, the first layer's cache must be
//! identical and every later layer's close, and its argmax the same.

mod common;

use spatial_mllm_web::gpu::{Gpu, Recorder, Tensor};
use spatial_mllm_web::model::qwen::{DecodeKernels, DecodePlan, KvCache, QwenConfig, TextModel};
use spatial_mllm_web::model::Params;
use spatial_mllm_web::rng::Rng;
use spatial_mllm_web::weights::convert::{convert, ConvertOptions};
use spatial_mllm_web::weights::loader::GpuParam;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;

/// The fixture converted with `policy` (e.g. "=q4") and loaded, its tied embedding (the lm_head)
/// cut into `lm_head_parts` row parts as the converter cuts the real 151 936-row table.
fn load(gpu: &Gpu, policy: &str, lm_head_parts: usize) -> (Params, QwenConfig) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("pkg");
    let opts = ConvertOptions { policy: Policy::parse(policy).unwrap(), max_shard: 128 << 20 };
    convert(&common::fixture_dir("qwen2.5-vl"), &dst, &opts, &mut |_| {}).unwrap();
    let pkg = Package::open(&dst).unwrap();
    let mut map = pkg.load(gpu, &mut |_| {}).unwrap();
    let name = "llm.embed_tokens.weight";
    if let Some(GpuParam::Matrix(parts)) = map.get(name) {
        let table = &parts[0];
        let rows = (table.rows / lm_head_parts).next_multiple_of(2);
        let cut = (0..table.rows).step_by(rows).map(|r0| table.slice_rows(gpu, r0, (r0 + rows).min(table.rows)).unwrap()).collect();
        map.insert(name.into(), GpuParam::Matrix(cut));
    }
    (Params::new(map), QwenConfig::from_json(&pkg.manifest.config).unwrap())
}

fn read(gpu: &Gpu, t: &Tensor) -> Vec<f32> {
    pollster::block_on(gpu.read_f32(t)).unwrap()
}

fn bits(gpu: &Gpu, t: &Tensor) -> Vec<u32> {
    read(gpu, t).iter().map(|v| v.to_bits()).collect()
}

/// Largest |a - b| over the largest |b|.
fn relative_gap(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-30);
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs())) / scale
}

fn argmax_rows(v: &[f32], cols: usize) -> Vec<usize> {
    v.chunks(cols).map(|r| r.iter().enumerate().fold(0, |best, (i, x)| if *x > r[best] { i } else { best })).collect()
}

/// Rows of random token ids embedded, at M-RoPE positions with distinct t/h/w components.
fn step_input(gpu: &Gpu, model: &TextModel, rng: &mut Rng, rows: usize, at: usize) -> (Tensor, Tensor) {
    let ids: Vec<u32> = (0..rows).map(|_| rng.below(model.cfg.vocab) as u32).collect();
    let pos: Vec<i32> = (0..rows).flat_map(|i| [(at + i) as i32, (at + 2 * i) as i32 + 3, (at / 2 + i) as i32]).collect();
    let mut rec = Recorder::new(gpu);
    let x = model.embed(&mut rec, &gpu.upload_u32(&ids, &[rows]).unwrap()).unwrap();
    rec.submit().unwrap();
    (x, gpu.upload_i32(&pos, &[rows, 3]).unwrap())
}

/// Prefill `past` random tokens into both caches, then run a step of `rows` rows fused (or
/// folded) and unfused up to the logits; compare logits and caches: bit for bit, or for the
/// folded step within `tol` of their scale. Returns the dispatches of each step.
fn compare(gpu: &Gpu, fused: &TextModel, plain: &TextModel, past: usize, rows: usize, what: &str) -> (u64, u64) {
    let cfg = &fused.cfg;
    let mut rng = Rng::new(past as u64 * 31 + rows as u64);
    let mut caches = [KvCache::new(gpu, cfg, past + rows).unwrap(), KvCache::new(gpu, cfg, past + rows).unwrap()];
    let (prompt, prompt_pos) = step_input(gpu, fused, &mut rng, past, 0);
    let (x, pos) = step_input(gpu, fused, &mut rng, rows, past);
    let mut outs = Vec::new();
    let mut dispatches = Vec::new();
    for (model, cache) in [fused, plain].into_iter().zip(caches.iter_mut()) {
        let mut rec = Recorder::new(gpu);
        model.forward(&mut rec, prompt.clone(), &prompt_pos, cache, None).unwrap();
        rec.submit().unwrap();
        let before = gpu.stats.snapshot();
        let mut rec = Recorder::new(gpu);
        let out = model.decode_logits(&mut rec, x.clone(), &pos, cache).unwrap();
        rec.submit().unwrap();
        dispatches.push((gpu.stats.snapshot() - before).dispatches);
        outs.push(out);
    }
    if fused.decode == DecodePlan::all(DecodeKernels::Fused) {
        assert_eq!(bits(gpu, &outs[0]), bits(gpu, &outs[1]), "{what}: logits, fused vs separate kernels");
        for l in 0..cfg.layers {
            assert_eq!(bits(gpu, &caches[0].kv[l]), bits(gpu, &caches[1].kv[l]), "{what}: layer {l} keys and values");
        }
    } else {
        // f32 sums in another order, or on the f16 path a rounding that lands the other side.
        let tol = if gpu.act == spatial_mllm_web::gpu::DType::F16 { 2e-2 } else { 1e-4 };
        let (a, b) = (read(gpu, &outs[0]), read(gpu, &outs[1]));
        let gap = relative_gap(&a, &b);
        println!("{what}: folded logits within {gap:.2e} of the separate kernels' scale");
        assert!(gap <= tol, "{what}: folded logits differ by {gap:.2e} of their scale (at most {tol:.0e})");
        assert_eq!(argmax_rows(&a, cfg.vocab), argmax_rows(&b, cfg.vocab), "{what}: greedy tokens, folded vs separate");
        assert_eq!(bits(gpu, &caches[0].kv[0]), bits(gpu, &caches[1].kv[0]), "{what}: layer 0 keys and values");
        for l in 1..cfg.layers {
            let gap = relative_gap(&read(gpu, &caches[0].kv[l]), &read(gpu, &caches[1].kv[l]));
            assert!(gap <= tol, "{what}: layer {l} keys and values differ by {gap:.2e} of their scale");
        }
    }
    (dispatches[0], dispatches[1])
}

/// An lm_head in three parts is computed one row at a time by the separate kernels.
fn run(allow_f16: bool, policy: &str, lm_head_parts: usize) {
    run_kernels(allow_f16, policy, lm_head_parts, DecodeKernels::Fused);
}

fn run_kernels(allow_f16: bool, policy: &str, lm_head_parts: usize, kernels: DecodeKernels) {
    let gpu = common::gpu(allow_f16);
    let (params, cfg) = load(&gpu, policy, lm_head_parts);
    let parts = params.matrix_parts("llm.embed_tokens.weight", cfg.text.vocab, cfg.text.hidden).unwrap().len();
    assert_eq!(parts, lm_head_parts, "row parts of the lm_head");
    let mut fused = TextModel::new(&gpu, &cfg.text, &params).unwrap();
    fused.decode = DecodePlan::all(kernels);
    let mut plain = TextModel::new(&gpu, &cfg.text, &params).unwrap();
    plain.decode = DecodePlan::all(DecodeKernels::Separate);
    let per_layer = if kernels == DecodeKernels::Folded { 4 } else { 5 };
    let layers = cfg.text.layers as u64;
    let mut steps: Vec<(usize, usize)> = if parts == 1 { vec![(5, 1), (9, 3), (600, 1), (700, 2)] } else { vec![(5, 1), (600, 1)] };
    if kernels == DecodeKernels::Folded {
        // Two and three key ranges (`fold_ranges`); the separate kernels take a split lm_head
        // one row at a time.
        steps.extend([(1100, 1), (2100, if parts == 1 { 2 } else { 1 })]);
    }
    for (past, rows) in steps {
        let what = format!("{} {policy} on the {:?} path, lm_head in {parts} part(s), {rows} row(s) after {past}", kernels.name(), gpu.act);
        let (f, p) = compare(&gpu, &fused, &plain, past, rows, &what);
        println!("{what}: {f} dispatches, {p} separate");
        // Five (folded: four) per layer, and the lm_head with the final norm; the long cache's
        // attention ranges are merged inside the o projection.
        assert_eq!(f, per_layer * layers + 1, "{what}: dispatches of the {} step", kernels.name());
        assert!(p >= 12 * layers + 2, "{what}: dispatches of the separate kernels");
    }
}

#[test]
fn fused_decode_is_bit_identical_f32_weights_f32_path() {
    run(false, "=f32", 1);
}

#[test]
fn fused_decode_is_bit_identical_f16_weights_f16_path() {
    run(true, "=f16", 1);
}

#[test]
fn fused_decode_is_bit_identical_q8_weights_f32_path() {
    run(false, "=q8", 3);
}

#[test]
fn fused_decode_is_bit_identical_f16_weights_f32_path_lm_head_in_parts() {
    run(false, "=f16", 3);
}

#[test]
fn fused_decode_is_bit_identical_q4_weights_f16_path() {
    run(true, "=q4", 1);
}

#[test]
fn folded_decode_is_close_f32_weights_f32_path() {
    run_kernels(false, "=f32", 1, DecodeKernels::Folded);
}

#[test]
fn folded_decode_is_close_q4_weights_f16_path() {
    run_kernels(true, "=q4", 1, DecodeKernels::Folded);
}

#[test]
fn folded_decode_is_close_q8_weights_f32_path_lm_head_in_parts() {
    run_kernels(false, "=q8", 3, DecodeKernels::Folded);
}
