//! Qwen2.5-VL against transformers (tests/fixtures/qwen2.5-vl), natively; the checks live in
//! `spatial_mllm_web::testing::qwen_parity` and run in the browser harness too: chat template and
//! tokenizer, M-RoPE position ids for text / image / video prompts, per-layer activations of the
//! decoder and the vision encoder and logits on the f32 path (relative error < 1e-3), and 32
//! greedy tokens identical, for a text prompt, one image and a 4-frame video.

mod common;

use common::gpu;
use spatial_mllm_web::gpu::{DType, Gpu, Recorder};
use spatial_mllm_web::model::qwen::chat::Message;
use spatial_mllm_web::model::qwen::generate::{generate, GenerationConfig, Prompt};
use spatial_mllm_web::model::qwen::vision_layout::Grid;
use spatial_mllm_web::model::qwen::{DecodeKernels, DecodePlan, KvCache, QwenConfig, TextModel, VisionModel};
use spatial_mllm_web::model::Params;
use spatial_mllm_web::testing::qwen_parity::{self, Fixture};

fn fixture() -> Fixture {
    let dir = common::fixture_dir("qwen2.5-vl");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let config = serde_json::from_slice(&read("config.json")).unwrap();
    Fixture::new(read("reference.safetensors"), &String::from_utf8(read("reference.json")).unwrap(), &read("tokenizer.json"), &config).unwrap()
}

/// The fixture converted to an f32 package and loaded, as a user's package would be.
fn load_params(gpu: &Gpu) -> (Params, QwenConfig) {
    let (params, config) = common::load_params(gpu, "qwen2.5-vl");
    (params, QwenConfig::from_json(&config).unwrap())
}

/// The decoder decodes with `kernels` here (a CPU adapter's default is the separate ones), so
/// that the greedy tokens check them against transformers.
fn load_models(gpu: &Gpu, kernels: DecodeKernels) -> (TextModel, VisionModel) {
    let (params, cfg) = load_params(gpu);
    let mut text = TextModel::new(gpu, &cfg.text, &params).unwrap();
    text.decode = DecodePlan::all(kernels);
    (text, VisionModel::new(gpu, &cfg.vision, &params).unwrap())
}

fn check(names: &[&str]) {
    check_with(names, DecodeKernels::Fused);
}

fn check_with(names: &[&str], kernels: DecodeKernels) {
    let gpu = gpu(false);
    let (text, vision) = load_models(&gpu, kernels);
    let fx = fixture();
    for name in names {
        match pollster::block_on(qwen_parity::run_check(&gpu, &fx, &text, &vision, name)) {
            Ok(detail) => println!("{name}: {detail}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn prompts_and_positions_match_transformers() {
    println!("{}", qwen_parity::check_prompts(&fixture()).unwrap());
}

#[test]
fn text_decoder_matches_transformers_layer_by_layer() {
    check(&["decoder layers", "text greedy"]);
}

/// The folded decode step (4 dispatches a layer, not bit-identical to the fused one) against
/// transformers' 32 greedy tokens, and a video prompt's logits.
#[test]
fn folded_decode_matches_transformers() {
    check_with(&["text greedy", "video prompt"], DecodeKernels::Folded);
}

#[test]
fn vision_encoder_matches_transformers_block_by_block() {
    check(&["vision blocks"]);
}

#[test]
fn image_and_video_prompts_match_transformers() {
    check(&["image prompt", "video prompt"]);
}

#[test]
fn every_check_is_run_here() {
    let here = ["prompts", "decoder layers", "text greedy", "vision blocks", "image prompt", "video prompt"];
    assert_eq!(qwen_parity::CHECKS, here, "a check was added to qwen_parity::CHECKS: run it in a test above");
}

/// The f16 activation path (the fast one on GPUs): the same image prompt's logits within f16's
/// error. Fails on an adapter without shader-f16 unless ALLOW_NO_F16=1.
#[test]
fn f16_path_stays_close_to_transformers() {
    let gpu = gpu(true);
    if gpu.act != DType::F16 {
        assert_eq!(std::env::var("ALLOW_NO_F16").as_deref(), Ok("1"), "adapter {} has no shader-f16", gpu.info.name);
        return;
    }
    let (text, vision) = load_models(&gpu, DecodeKernels::Fused);
    println!("{}", pollster::block_on(qwen_parity::check_f16_image(&gpu, &fixture(), &text, &vision)).unwrap());
}

/// Bad input: a prompt longer than the KV cache, an image smaller than one merged patch, a config
/// whose sizes disagree with the weights. Each is a clear error, and the model still works after.
#[test]
fn bad_input_is_a_clear_error() {
    let gpu = gpu(false);
    let (params, cfg) = load_params(&gpu);
    let text = TextModel::new(&gpu, &cfg.text, &params).unwrap();
    let vision = VisionModel::new(&gpu, &cfg.vision, &params).unwrap();
    let fx = fixture();

    let ids = fx.tokenizer.prompt_ids(&[Message::text("user", &"many words ".repeat(20))], &[]).unwrap();
    let mut cache = KvCache::new(&gpu, &cfg.text, 32).unwrap();
    let mut rec = Recorder::new(&gpu);
    let embeds = text.embed(&mut rec, &gpu.upload_u32(&ids, &[ids.len()]).unwrap()).unwrap();
    rec.submit().unwrap();
    let positions = (0..ids.len() as i32).map(|i| [i; 3]).collect();
    let e = pollster::block_on(generate(&gpu, &text, &mut cache, Prompt { embeds, positions, delta: 0 }, &GenerationConfig::greedy(4, vec![]), &mut |_| true))
        .expect_err("a prompt longer than the KV cache must fail");
    assert!(e.to_string().contains("do not fit the KV cache"), "{e}");
    assert_eq!(cache.len, 0, "nothing was written to the cache");

    for grid in [Grid { t: 1, h: 0, w: 0 }, Grid { t: 1, h: 1, w: 1 }, Grid { t: 1, h: 2, w: 3 }] {
        let px = vec![0.0; grid.t * grid.h * grid.w * 3 * 2 * 14 * 14];
        let mut rec = Recorder::new(&gpu);
        let e = vision.forward(&mut rec, &px, &[grid], None).expect_err("a grid smaller than one merged patch must fail");
        assert!(e.to_string().contains("at least 28 px"), "{grid:?}: {e}");
    }

    let mut wrong = cfg.text.clone();
    wrong.intermediate += 8;
    let e = TextModel::new(&gpu, &wrong, &params).err().expect("a config that disagrees with the weights must fail");
    assert!(e.to_string().contains("mlp.gate_proj.weight"), "{e}");
    println!("{e}");

    // The model still answers after the errors.
    println!("{}", pollster::block_on(qwen_parity::run_check(&gpu, &fx, &text, &vision, "image prompt")).unwrap());
}

/// Decode steps are pipelined (the step feeding a token runs before the token is read back); a
/// reply that ends early must leave the KV cache as step-by-step decoding would. Stopping on a
/// stop token or cancelling drops the speculative step's row, and continuing from that cache with
/// the stop token gives the same tokens as the uninterrupted reply. A repetition penalty of
/// of 1 + 1e-7, which takes the step-by-step path, gives the same tokens too.
#[test]
fn replies_that_end_early_leave_the_cache_as_step_by_step() {
    use spatial_mllm_web::model::qwen::generate::StopReason;
    use spatial_mllm_web::model::qwen::rope_index::decode_position;
    let gpu = gpu(false);
    let (params, cfg) = load_params(&gpu);
    let text = TextModel::new(&gpu, &cfg.text, &params).unwrap();
    let fx = fixture();
    let ids = fx.tokenizer.prompt_ids(&[Message::text("user", "Where is the chair?")], &[]).unwrap();
    let n = ids.len();
    let embed = |toks: &[u32]| {
        let mut rec = Recorder::new(&gpu);
        let e = text.embed(&mut rec, &gpu.upload_u32(toks, &[toks.len()]).unwrap()).unwrap();
        rec.submit().unwrap();
        e
    };
    let prompt = || Prompt { embeds: embed(&ids), positions: (0..n as i32).map(|i| [i; 3]).collect(), delta: 0 };
    let run = |cache: &mut KvCache, p: Prompt, cfg: GenerationConfig, cancel_at: usize| {
        let mut seen = 0;
        pollster::block_on(generate(&gpu, &text, cache, p, &cfg, &mut |_| {
            seen += 1;
            seen != cancel_at
        }))
        .unwrap()
    };
    let max = 24;
    let mut cache = KvCache::new(&gpu, &cfg.text, n + max).unwrap();
    let full = run(&mut cache, prompt(), GenerationConfig::greedy(max, vec![]), 0);
    assert_eq!((full.tokens.len(), full.reason, cache.len), (max, StopReason::MaxTokens, n + max - 1));

    // Step by step (the penalty path) gives the same reply.
    cache.clear();
    let stepwise = run(&mut cache, prompt(), GenerationConfig { repetition_penalty: 1.0 + f32::EPSILON, ..GenerationConfig::greedy(max, vec![]) }, 0);
    assert_eq!(cache.len, n + max - 1);
    assert_eq!(stepwise.tokens, full.tokens, "step by step (a penalty of 1 + 1e-7)");

    // Stop on a token that first appears at index k: the reply is the k tokens before it.
    let k = (5..max).find(|&k| !full.tokens[..k].contains(&full.tokens[k])).expect("a token new at its index");
    cache.clear();
    let stopped = run(&mut cache, prompt(), GenerationConfig::greedy(max, vec![full.tokens[k]]), 0);
    assert_eq!(stopped.tokens, full.tokens[..k]);
    assert_eq!((stopped.reason, cache.len), (StopReason::StopToken, n + k));
    // Feeding the stop token now continues the uninterrupted reply.
    let next = Prompt { embeds: embed(&full.tokens[k..k + 1]), positions: vec![decode_position(cache.len, 0)], delta: 0 };
    let rest = run(&mut cache, next, GenerationConfig::greedy(max - k - 1, vec![]), 0);
    assert_eq!(rest.tokens, full.tokens[k + 1..], "continuing after the stop token");

    // Cancel after the 5th token: 5 tokens, 4 of them fed to the cache.
    cache.clear();
    let cancelled = run(&mut cache, prompt(), GenerationConfig::greedy(max, vec![]), 5);
    assert_eq!(cancelled.tokens, full.tokens[..5]);
    assert_eq!((cancelled.reason, cache.len), (StopReason::Cancelled, n + 4));
}
