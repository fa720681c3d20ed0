//! Qwen2.5-VL against transformers (tests/fixtures/qwen2.5-vl): chat template and tokenizer,
//! M-RoPE position ids for text / image / video prompts, per-layer activations of the decoder and
//! the vision encoder and logits on the f32 path (relative error < 1e-3), and 32 greedy tokens
//! identical, for a text prompt, one image and a 4-frame video.

use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use spatial_mllm_web::gpu::{Gpu, GpuOptions, Recorder, Tensor};
use spatial_mllm_web::model::qwen::chat::{Content, Message, QwenTokenizer, TextStream};
use spatial_mllm_web::model::qwen::generate::{generate, GenerationConfig, Prompt, StopReason};
use spatial_mllm_web::model::qwen::rope_index::{rope_index, VisionGrid};
use spatial_mllm_web::model::qwen::text::Taps;
use spatial_mllm_web::model::qwen::vision::{merge_into_prompt, VisionTaps};
use spatial_mllm_web::model::qwen::vision_layout::Grid;
use spatial_mllm_web::model::qwen::{KvCache, QwenConfig, TextModel, VisionModel};
use spatial_mllm_web::model::Params;
use spatial_mllm_web::testing::compare;
use spatial_mllm_web::weights::convert::{convert, ConvertOptions};
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2.5-vl")
}

struct Reference {
    bytes: Vec<u8>,
    meta: serde_json::Value,
}

impl Reference {
    fn load() -> Reference {
        let bytes = std::fs::read(fixture().join("reference.safetensors")).unwrap();
        let meta = serde_json::from_str(&std::fs::read_to_string(fixture().join("reference.json")).unwrap()).unwrap();
        Reference { bytes, meta }
    }
    fn f64s(&self, name: &str) -> Vec<f64> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap_or_else(|_| panic!("reference lacks {name}"));
        let d = t.data();
        match t.dtype() {
            Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            Dtype::I32 => d.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            other => panic!("{name}: {other:?}"),
        }
    }
    fn ints(&self, name: &str) -> Vec<i64> {
        self.f64s(name).into_iter().map(|v| v as i64).collect()
    }
}

fn tokenizer() -> QwenTokenizer {
    QwenTokenizer::from_bytes(&std::fs::read(fixture().join("tokenizer.json")).unwrap()).unwrap()
}

fn messages(case: &str) -> Vec<Message> {
    match case {
        "text" => vec![Message::text("user", "How many chairs are there? 房间 123  !")],
        "image" => vec![Message::user(vec![Content::Image, Content::Text("What is this?".into())])],
        _ => vec![Message::user(vec![Content::Video, Content::Text("How far is the sofa?".into())])],
    }
}

fn grids(r: &Reference, case: &str) -> Vec<VisionGrid> {
    let (key, spg) = match case {
        "image" => ("image.image_grid_thw", 0.0),
        "video" => ("video.video_grid_thw", r.meta["cases"]["video"]["second_per_grid_ts"][0].as_f64().unwrap() as f32),
        _ => return vec![],
    };
    let g = r.ints(key);
    vec![VisionGrid { t: g[0] as usize, h: g[1] as usize, w: g[2] as usize, second_per_grid_t: spg }]
}

fn config() -> QwenConfig {
    QwenConfig::from_json(&serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap()).unwrap()).unwrap()
}

#[test]
fn prompts_and_positions_match_transformers() {
    let r = Reference::load();
    let tok = tokenizer();
    let cfg = config();
    tok.check_config(&cfg.tokens).unwrap();
    for case in ["text", "image", "video"] {
        let g = grids(&r, case);
        let counts: Vec<usize> = g.iter().map(|g| g.t * g.h * g.w / (cfg.vision.merge * cfg.vision.merge)).collect();
        let ids = tok.prompt_ids(&messages(case), &counts).unwrap();
        let want: Vec<u32> = r.ints(&format!("{case}.input_ids")).into_iter().map(|v| v as u32).collect();
        assert_eq!(ids, want, "{case}: prompt ids");
        let (pos, delta) = rope_index(&ids, &g, &cfg.tokens, cfg.vision.merge, cfg.vision.tokens_per_second).unwrap();
        let want_pos = r.ints(&format!("{case}.position_ids")); // [3, seq]
        let n = ids.len();
        for (i, p) in pos.iter().enumerate() {
            for c in 0..3 {
                assert_eq!(p[c] as i64, want_pos[c * n + i], "{case}: position {i} component {c}");
            }
        }
        assert_eq!(delta, r.meta["cases"][case]["rope_delta"].as_i64().unwrap(), "{case}: rope delta");
    }
}

fn load_model(gpu: &Gpu) -> TextModel {
    load_models(gpu).0
}

fn load_models(gpu: &Gpu) -> (TextModel, VisionModel) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("pkg");
    let opts = ConvertOptions { policy: Policy::parse("=f32").unwrap(), max_shard: 128 << 20 };
    convert(&fixture(), &dst, &opts, &mut |_| {}).unwrap();
    let pkg = Package::open(&dst).unwrap();
    let params = Params::new(pkg.load(gpu, &mut |_| {}).unwrap());
    let cfg = QwenConfig::from_json(&pkg.manifest.config).unwrap();
    (TextModel::new(gpu, &cfg.text, &params).unwrap(), VisionModel::new(gpu, &cfg.vision, &params).unwrap())
}

fn read(gpu: &Gpu, t: &Tensor) -> Vec<f32> {
    pollster::block_on(gpu.read_f32(t)).unwrap()
}

#[test]
fn text_decoder_matches_transformers_layer_by_layer() {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, poison: true })).expect("a GPU adapter");
    let model = load_model(&gpu);
    let r = Reference::load();
    let ids: Vec<u32> = r.ints("text.input_ids").into_iter().map(|v| v as u32).collect();
    let n = ids.len();
    let pos: Vec<i32> = {
        let p = r.ints("text.position_ids");
        (0..n).flat_map(|i| (0..3).map(move |c| (c, i))).map(|(c, i)| p[c * n + i] as i32).collect()
    };
    let mut cache = KvCache::new(&gpu, &model.cfg, 128).unwrap();
    let mut rec = Recorder::new(&gpu);
    let idt = gpu.upload_u32(&ids, &[n]).unwrap();
    let x = model.embed(&mut rec, &idt).unwrap();
    let post = gpu.upload_i32(&pos, &[n, 3]).unwrap();
    let mut taps = Taps::default();
    let out = model.forward(&mut rec, x.clone(), &post, &mut cache, Some(&mut taps)).unwrap();
    let logits = model.logits(&mut rec, &out).unwrap();
    rec.submit().unwrap();
    let tol = 1e-3;
    let mut report = vec![compare("token_embeds", &read(&gpu, &x), &r.f64s("text.llm.token_embeds"), tol).unwrap()];
    for (i, t) in taps.layers.iter().enumerate() {
        report.push(compare(&format!("layer {i}"), &read(&gpu, t), &r.f64s(&format!("text.llm.layer.{i}")), tol).unwrap());
    }
    report.push(compare("norm", &read(&gpu, taps.norm.as_ref().unwrap()), &r.f64s("text.llm.norm"), tol).unwrap());
    report.push(compare("logits", &read(&gpu, &logits), &r.f64s("text.logits"), tol).unwrap());
    println!("{}", report.join("\n"));
}

#[test]
fn greedy_generation_matches_transformers() {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, poison: true })).expect("a GPU adapter");
    let model = load_model(&gpu);
    let r = Reference::load();
    let tok = tokenizer();
    let cfg = config();
    let ids = tok.prompt_ids(&messages("text"), &[]).unwrap();
    let (positions, delta) = rope_index(&ids, &[], &cfg.tokens, 2, 2.0).unwrap();
    let mut cache = KvCache::new(&gpu, &model.cfg, 128).unwrap();
    let mut rec = Recorder::new(&gpu);
    let idt = gpu.upload_u32(&ids, &[ids.len()]).unwrap();
    let embeds = model.embed(&mut rec, &idt).unwrap();
    rec.submit().unwrap();
    let mut stream = TextStream::new();
    let mut text = String::new();
    let mut on_token = |id: u32| {
        if let Some(p) = stream.push(&tok, id).unwrap() {
            text += &p;
        }
        true
    };
    // No stop token, as the reference ran: exactly 32 tokens.
    let gen = pollster::block_on(generate(&gpu, &model, &mut cache, Prompt { embeds, positions, delta }, &GenerationConfig::greedy(32, vec![]), &mut on_token))
        .unwrap();
    assert_eq!(gen.reason, StopReason::MaxTokens);
    let want: Vec<u32> = r.ints("text.generated").into_iter().map(|v| v as u32).collect();
    assert_eq!(gen.tokens, want, "greedy tokens");
    if let Some(p) = stream.finish(&tok).unwrap() {
        text += &p;
    }
    assert_eq!(text, tok.decode(&want, true).unwrap(), "streamed pieces add up to the decoded reply");
    assert_eq!(cache.len, ids.len() + 31);
}

fn f32_gpu() -> Gpu {
    pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, poison: true })).expect("a GPU adapter")
}

fn vision_input(r: &Reference, case: &str) -> (Vec<f32>, Vec<Grid>) {
    let key = if case == "image" { "image.pixel_values" } else { "video.pixel_values_videos" };
    let px: Vec<f32> = r.f64s(key).into_iter().map(|v| v as f32).collect();
    let g = grids(r, case).into_iter().map(|g| Grid { t: g.t, h: g.h, w: g.w }).collect();
    (px, g)
}

#[test]
fn vision_encoder_matches_transformers_block_by_block() {
    let gpu = f32_gpu();
    let (_, vision) = load_models(&gpu);
    let r = Reference::load();
    for case in ["image", "video"] {
        let (px, g) = vision_input(&r, case);
        let mut rec = Recorder::new(&gpu);
        let mut taps = VisionTaps::default();
        let out = vision.forward(&mut rec, &px, &g, Some(&mut taps)).unwrap();
        rec.submit().unwrap();
        let tol = 1e-3;
        let mut report = Vec::new();
        for (i, t) in taps.blocks.iter().enumerate() {
            report.push(compare(&format!("{case} block {i}"), &read(&gpu, t), &r.f64s(&format!("{case}.vit.block.{i}")), tol).unwrap());
        }
        report.push(compare(&format!("{case} vit out"), &read(&gpu, &out), &r.f64s(&format!("{case}.vit.out")), tol).unwrap());
        println!("{}", report.join("\n"));
    }
}

/// A multimodal prompt run through the vision encoder and the decoder in one submission.
struct PromptRun {
    embeds: Tensor,
    vision: Tensor,
    logits: Tensor,
    positions: Vec<[i32; 3]>,
    delta: i64,
}

fn run_prompt(gpu: &Gpu, text: &TextModel, vision: &VisionModel, r: &Reference, case: &str) -> PromptRun {
    let (tok, cfg) = (tokenizer(), config());
    let (px, g) = vision_input(r, case);
    let counts: Vec<usize> = g.iter().map(|&g| vision.tokens(g)).collect();
    let ids = tok.prompt_ids(&messages(case), &counts).unwrap();
    let (positions, delta) = rope_index(&ids, &grids(r, case), &cfg.tokens, cfg.vision.merge, cfg.vision.tokens_per_second).unwrap();
    let mut rec = Recorder::new(gpu);
    let v = vision.forward(&mut rec, &px, &g, None).unwrap();
    let idt = gpu.upload_u32(&ids, &[ids.len()]).unwrap();
    let embeds = text.embed(&mut rec, &idt).unwrap();
    merge_into_prompt(&mut rec, &embeds, &ids, [cfg.tokens.image_pad, cfg.tokens.video_pad], &v).unwrap();
    let mut cache = KvCache::new(gpu, &text.cfg, 256).unwrap();
    let pos: Vec<i32> = positions.iter().flatten().copied().collect();
    let post = gpu.upload_i32(&pos, &[ids.len(), 3]).unwrap();
    let hidden = text.forward(&mut rec, embeds.clone(), &post, &mut cache, None).unwrap();
    let logits = text.logits(&mut rec, &hidden).unwrap();
    rec.submit().unwrap();
    PromptRun { embeds, vision: v, logits, positions, delta }
}

#[test]
fn image_and_video_prompts_match_transformers() {
    let gpu = f32_gpu();
    let (text, vision) = load_models(&gpu);
    let r = Reference::load();
    for case in ["image", "video"] {
        // Full-prompt logits first (their own cache), then generation from the same embeddings.
        let run = run_prompt(&gpu, &text, &vision, &r, case);
        println!("{}", compare(&format!("{case} logits"), &read(&gpu, &run.logits), &r.f64s(&format!("{case}.logits")), 1e-3).unwrap());
        let mut cache = KvCache::new(&gpu, &text.cfg, 256).unwrap();
        let prompt = Prompt { embeds: run.embeds, positions: run.positions, delta: run.delta };
        let gen = pollster::block_on(generate(&gpu, &text, &mut cache, prompt, &GenerationConfig::greedy(32, vec![]), &mut |_| true)).unwrap();
        let want: Vec<u32> = r.ints(&format!("{case}.generated")).into_iter().map(|v| v as u32).collect();
        assert_eq!(gen.tokens, want, "{case}: greedy tokens");
    }
}

/// The f16 activation path (the fast one on GPUs): the same image prompt's logits within f16's
/// error. Fails on an adapter without shader-f16 unless ALLOW_NO_F16=1.
#[test]
fn f16_path_stays_close_to_transformers() {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: true, allow_subgroups: true, poison: true })).expect("a GPU adapter");
    if gpu.act != spatial_mllm_web::gpu::DType::F16 {
        assert_eq!(std::env::var("ALLOW_NO_F16").as_deref(), Ok("1"), "adapter {} has no shader-f16", gpu.info.name);
        return;
    }
    let (text, vision) = load_models(&gpu);
    let r = Reference::load();
    let run = run_prompt(&gpu, &text, &vision, &r, "image");
    println!("{}", compare("f16 vit out", &read(&gpu, &run.vision), &r.f64s("image.vit.out"), 1e-2).unwrap());
    println!("{}", compare("f16 logits", &read(&gpu, &run.logits), &r.f64s("image.logits"), 1e-2).unwrap());
}
