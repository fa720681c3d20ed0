//! Qwen2.5-VL against transformers on the tiny fixture (`tests/fixtures/qwen2.5-vl`), shared by the
//! native tests (`tests/qwen.rs`) and the browser harness (`web::run_qwen_parity`): prompt ids and
//! M-RoPE positions, every decoder layer, every ViT block, logits, and 32 greedy tokens for a text
//! prompt, one image and a 4-frame video.

use std::fmt::Display;

use super::reference_file::ReferenceFile;
use super::util::{compare, CaseOutcome};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::qwen::chat::{Content, Message, QwenTokenizer, TextStream};
use crate::model::qwen::generate::{generate, GenerationConfig, Prompt, StopReason};
use crate::model::qwen::rope_index::{rope_index, VisionGrid};
use crate::model::qwen::text::Taps;
use crate::model::qwen::vision::{merge_into_prompt, VisionTaps};
use crate::model::qwen::vision_layout::Grid;
use crate::model::qwen::{KvCache, QwenConfig, TextModel, VisionModel};

/// Relative error allowed on the f32 path (the bar); measured ~1e-6 on lavapipe.
pub const F32_TOL: f64 = 1e-3;
/// New tokens the reference generated greedily, with no stop token.
const NEW_TOKENS: usize = 32;

/// Every check, in the order the harnesses run them.
pub const CHECKS: &[&str] = &["prompts", "decoder layers", "text greedy", "vision blocks", "image prompt", "video prompt"];

fn err(e: impl Display) -> String {
    e.to_string()
}

/// The reference outputs (`reference.safetensors` + `reference.json`), the tokenizer and config.
pub struct Fixture {
    reference: ReferenceFile,
    meta: serde_json::Value,
    pub tokenizer: QwenTokenizer,
    pub cfg: QwenConfig,
}

impl Fixture {
    pub fn new(reference: Vec<u8>, reference_json: &str, tokenizer_json: &[u8], config: &serde_json::Value) -> Result<Fixture, String> {
        let reference = ReferenceFile::new(reference)?;
        let meta = serde_json::from_str(reference_json).map_err(|e| format!("reference.json: {e}"))?;
        let tokenizer = QwenTokenizer::from_bytes(tokenizer_json).map_err(err)?;
        let cfg = QwenConfig::from_json(config).map_err(err)?;
        Ok(Fixture { reference, meta, tokenizer, cfg })
    }

    pub fn f64s(&self, name: &str) -> Result<Vec<f64>, String> {
        self.reference.f64s(name)
    }

    fn ints(&self, name: &str) -> Result<Vec<i64>, String> {
        Ok(self.f64s(name)?.into_iter().map(|v| v as i64).collect())
    }

    fn ids(&self, name: &str) -> Result<Vec<u32>, String> {
        Ok(self.f64s(name)?.into_iter().map(|v| v as u32).collect())
    }

    /// The conversation of each case, as the fixture generator wrote it.
    fn messages(case: &str) -> Vec<Message> {
        match case {
            "text" => vec![Message::text("user", "How many chairs are there? 房间 123  !")],
            "image" => vec![Message::user(vec![Content::Image, Content::Text("What is this?".into())])],
            _ => vec![Message::user(vec![Content::Video, Content::Text("How far is the sofa?".into())])],
        }
    }

    fn grids(&self, case: &str) -> Result<Vec<VisionGrid>, String> {
        let (key, spg) = match case {
            "image" => ("image.image_grid_thw", 0.0),
            "video" => {
                let spg = self.meta["cases"]["video"]["second_per_grid_ts"][0].as_f64().ok_or("reference.json lacks second_per_grid_ts")?;
                ("video.video_grid_thw", spg as f32)
            }
            _ => return Ok(vec![]),
        };
        let g = self.ints(key)?;
        Ok(vec![VisionGrid { t: g[0] as usize, h: g[1] as usize, w: g[2] as usize, second_per_grid_t: spg }])
    }

    fn vision_input(&self, case: &str) -> Result<(Vec<f32>, Vec<Grid>), String> {
        let key = if case == "image" { "image.pixel_values" } else { "video.pixel_values_videos" };
        let px = self.f64s(key)?.into_iter().map(|v| v as f32).collect();
        let g = self.grids(case)?.into_iter().map(|g| Grid { t: g.t, h: g.h, w: g.w }).collect();
        Ok((px, g))
    }
}

/// Run one check of `CHECKS` by name.
pub async fn run_check(gpu: &Gpu, fx: &Fixture, text: &TextModel, vision: &VisionModel, name: &str) -> CaseOutcome {
    match name {
        "prompts" => check_prompts(fx),
        "decoder layers" => check_decoder_layers(gpu, fx, text).await,
        "text greedy" => check_text_greedy(gpu, fx, text).await,
        "vision blocks" => check_vision_blocks(gpu, fx, vision).await,
        "image prompt" => check_multimodal(gpu, fx, text, vision, "image").await,
        "video prompt" => check_multimodal(gpu, fx, text, vision, "video").await,
        other => Err(format!("no check named {other:?}")),
    }
}

/// Prompt ids from the chat template and tokenizer, and M-RoPE positions with the rope delta.
pub fn check_prompts(fx: &Fixture) -> CaseOutcome {
    let cfg = &fx.cfg;
    fx.tokenizer.check_config(&cfg.tokens).map_err(err)?;
    let mut lines = Vec::new();
    for case in ["text", "image", "video"] {
        let g = fx.grids(case)?;
        let counts: Vec<usize> = g.iter().map(|g| g.t * g.h * g.w / (cfg.vision.merge * cfg.vision.merge)).collect();
        let ids = fx.tokenizer.prompt_ids(&Fixture::messages(case), &counts).map_err(err)?;
        if ids != fx.ids(&format!("{case}.input_ids"))? {
            return Err(format!("{case}: prompt ids differ from transformers'"));
        }
        let (pos, delta) = rope_index(&ids, &g, &cfg.tokens, cfg.vision.merge, cfg.vision.tokens_per_second).map_err(err)?;
        let want = fx.ints(&format!("{case}.position_ids"))?; // [3, seq]
        let n = ids.len();
        for (i, p) in pos.iter().enumerate() {
            for c in 0..3 {
                if p[c] as i64 != want[c * n + i] {
                    return Err(format!("{case}: position {i} component {c} is {}, transformers has {}", p[c], want[c * n + i]));
                }
            }
        }
        let want_delta = fx.meta["cases"][case]["rope_delta"].as_i64().ok_or("reference.json lacks rope_delta")?;
        if delta != want_delta {
            return Err(format!("{case}: rope delta {delta}, transformers has {want_delta}"));
        }
        lines.push(format!("{case}: {n} ids and positions equal, delta {delta}"));
    }
    Ok(lines.join("; "))
}

async fn read(gpu: &Gpu, t: &Tensor) -> Result<Vec<f32>, String> {
    gpu.read_f32(t).await.map_err(err)
}

/// Token embeddings, every decoder layer, the final norm and the logits of the text prompt.
pub async fn check_decoder_layers(gpu: &Gpu, fx: &Fixture, model: &TextModel) -> CaseOutcome {
    let ids = fx.ids("text.input_ids")?;
    let n = ids.len();
    let p = fx.ints("text.position_ids")?;
    let pos: Vec<i32> = (0..n).flat_map(|i| (0..3).map(move |c| (c, i))).map(|(c, i)| p[c * n + i] as i32).collect();
    let mut cache = KvCache::new(gpu, &model.cfg, 128).map_err(err)?;
    let mut rec = Recorder::new(gpu);
    let x = model.embed(&mut rec, &gpu.upload_u32(&ids, &[n]).map_err(err)?).map_err(err)?;
    let post = gpu.upload_i32(&pos, &[n, 3]).map_err(err)?;
    let mut taps = Taps::default();
    let out = model.forward(&mut rec, x.clone(), &post, &mut cache, Some(&mut taps)).map_err(err)?;
    let logits = model.logits(&mut rec, &out).map_err(err)?;
    rec.submit().map_err(err)?;
    let mut report = vec![compare("token_embeds", &read(gpu, &x).await?, &fx.f64s("text.llm.token_embeds")?, F32_TOL)?];
    for (i, t) in taps.layers.iter().enumerate() {
        report.push(compare(&format!("layer {i}"), &read(gpu, t).await?, &fx.f64s(&format!("text.llm.layer.{i}"))?, F32_TOL)?);
    }
    let norm = taps.norm.as_ref().ok_or("the final norm was not tapped")?;
    report.push(compare("norm", &read(gpu, norm).await?, &fx.f64s("text.llm.norm")?, F32_TOL)?);
    report.push(compare("logits", &read(gpu, &logits).await?, &fx.f64s("text.logits")?, F32_TOL)?);
    Ok(report.join("; "))
}

fn same_tokens(case: &str, got: &[u32], want: &[u32]) -> Result<(), String> {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        None if got.len() == want.len() => Ok(()),
        None => Err(format!("{case}: {} greedy tokens, transformers made {}", got.len(), want.len())),
        Some(i) => Err(format!("{case}: greedy token {i} is {}, transformers chose {} (ours {:?})", got[i], want[i], got)),
    }
}

/// 32 greedy tokens of the text prompt, streamed piece by piece into the decoded reply.
pub async fn check_text_greedy(gpu: &Gpu, fx: &Fixture, model: &TextModel) -> CaseOutcome {
    let (tok, cfg) = (&fx.tokenizer, &fx.cfg);
    let ids = tok.prompt_ids(&Fixture::messages("text"), &[]).map_err(err)?;
    let (positions, delta) = rope_index(&ids, &[], &cfg.tokens, cfg.vision.merge, cfg.vision.tokens_per_second).map_err(err)?;
    let mut cache = KvCache::new(gpu, &model.cfg, 128).map_err(err)?;
    let mut rec = Recorder::new(gpu);
    let embeds = model.embed(&mut rec, &gpu.upload_u32(&ids, &[ids.len()]).map_err(err)?).map_err(err)?;
    rec.submit().map_err(err)?;
    let mut stream = TextStream::new();
    let mut text = String::new();
    let mut stream_err = None;
    // Bind groups created so far, at each token: repeated decode steps must find theirs cached.
    let mut bind_groups = Vec::new();
    let mut on_token = |id: u32| {
        bind_groups.push(gpu.stats.snapshot().bind_groups);
        match stream.push(tok, id) {
            Ok(Some(p)) => text += &p,
            Ok(None) => {}
            Err(e) => stream_err = Some(e.to_string()),
        }
        true
    };
    // No stop token, as the reference ran: exactly 32 tokens.
    let prompt = Prompt { embeds, positions, delta };
    let gen = generate(gpu, model, &mut cache, prompt, &GenerationConfig::greedy(NEW_TOKENS, vec![]), &mut on_token).await.map_err(err)?;
    if let Some(e) = stream_err {
        return Err(e);
    }
    if gen.reason != StopReason::MaxTokens {
        return Err(format!("stopped for {:?}, not at the token limit", gen.reason));
    }
    let want = fx.ids("text.generated")?;
    same_tokens("text", &gen.tokens, &want)?;
    if let Some(p) = stream.finish(tok).map_err(err)? {
        text += &p;
    }
    if text != tok.decode(&want, true).map_err(err)? {
        return Err("the streamed pieces do not add up to the decoded reply".into());
    }
    if cache.len != ids.len() + NEW_TOKENS - 1 {
        return Err(format!("the KV cache holds {} positions, expected {}", cache.len, ids.len() + NEW_TOKENS - 1));
    }
    // Token i is seen after decode step i - 1; from the third step on the layout repeats.
    let late = bind_groups[NEW_TOKENS - 1] - bind_groups[3];
    if late != 0 {
        return Err(format!("decode steps 3..{} created {late} bind groups; repeated steps should reuse theirs", NEW_TOKENS - 1));
    }
    Ok(format!(
        "{NEW_TOKENS} tokens identical, {:.1} ms prefill, {:.1} ms decode, bind groups created by the first decode steps: {:?}, later: 0",
        gen.prefill_ms,
        gen.decode_ms,
        bind_groups.windows(2).take(3).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    ))
}

/// Every ViT block (in window order) and the merger output, for the image and the video.
pub async fn check_vision_blocks(gpu: &Gpu, fx: &Fixture, vision: &VisionModel) -> CaseOutcome {
    let mut report = Vec::new();
    for case in ["image", "video"] {
        let (px, g) = fx.vision_input(case)?;
        let mut rec = Recorder::new(gpu);
        let mut taps = VisionTaps::default();
        let out = vision.forward(&mut rec, &px, &g, Some(&mut taps)).map_err(err)?;
        rec.submit().map_err(err)?;
        for (i, t) in taps.blocks.iter().enumerate() {
            report.push(compare(&format!("{case} block {i}"), &read(gpu, t).await?, &fx.f64s(&format!("{case}.vit.block.{i}"))?, F32_TOL)?);
        }
        report.push(compare(&format!("{case} vit out"), &read(gpu, &out).await?, &fx.f64s(&format!("{case}.vit.out"))?, F32_TOL)?);
    }
    Ok(report.join("; "))
}

/// A multimodal prompt run through the vision encoder and the decoder in one submission.
pub struct PromptRun {
    pub embeds: Tensor,
    pub vision: Tensor,
    pub logits: Tensor,
    pub positions: Vec<[i32; 3]>,
    pub delta: i64,
}

pub fn run_prompt(gpu: &Gpu, fx: &Fixture, text: &TextModel, vision: &VisionModel, case: &str) -> Result<PromptRun, String> {
    let cfg = &fx.cfg;
    let (px, g) = fx.vision_input(case)?;
    let counts: Vec<usize> = g.iter().map(|&g| vision.tokens(g)).collect();
    let ids = fx.tokenizer.prompt_ids(&Fixture::messages(case), &counts).map_err(err)?;
    let (positions, delta) = rope_index(&ids, &fx.grids(case)?, &cfg.tokens, cfg.vision.merge, cfg.vision.tokens_per_second).map_err(err)?;
    let mut rec = Recorder::new(gpu);
    let v = vision.forward(&mut rec, &px, &g, None).map_err(err)?;
    let embeds = text.embed(&mut rec, &gpu.upload_u32(&ids, &[ids.len()]).map_err(err)?).map_err(err)?;
    merge_into_prompt(&mut rec, &embeds, &ids, [cfg.tokens.image_pad, cfg.tokens.video_pad], &v).map_err(err)?;
    let mut cache = KvCache::new(gpu, &text.cfg, 256).map_err(err)?;
    let pos: Vec<i32> = positions.iter().flatten().copied().collect();
    let post = gpu.upload_i32(&pos, &[ids.len(), 3]).map_err(err)?;
    let hidden = text.forward(&mut rec, embeds.clone(), &post, &mut cache, None).map_err(err)?;
    let logits = text.logits(&mut rec, &hidden).map_err(err)?;
    rec.submit().map_err(err)?;
    Ok(PromptRun { embeds, vision: v, logits, positions, delta })
}

/// Full-prompt logits of an image or video prompt, then 32 greedy tokens from the same embeddings.
pub async fn check_multimodal(gpu: &Gpu, fx: &Fixture, text: &TextModel, vision: &VisionModel, case: &str) -> CaseOutcome {
    let run = run_prompt(gpu, fx, text, vision, case)?;
    let line = compare(&format!("{case} logits"), &read(gpu, &run.logits).await?, &fx.f64s(&format!("{case}.logits"))?, F32_TOL)?;
    let mut cache = KvCache::new(gpu, &text.cfg, 256).map_err(err)?;
    let prompt = Prompt { embeds: run.embeds, positions: run.positions, delta: run.delta };
    let gen = generate(gpu, text, &mut cache, prompt, &GenerationConfig::greedy(NEW_TOKENS, vec![]), &mut |_| true).await.map_err(err)?;
    same_tokens(case, &gen.tokens, &fx.ids(&format!("{case}.generated"))?)?;
    Ok(format!("{line}; {NEW_TOKENS} greedy tokens identical"))
}

/// The f16 activation path: the image prompt's ViT output and logits within f16's error.
pub async fn check_f16_image(gpu: &Gpu, fx: &Fixture, text: &TextModel, vision: &VisionModel) -> CaseOutcome {
    let run = run_prompt(gpu, fx, text, vision, "image")?;
    let a = compare("f16 vit out", &read(gpu, &run.vision).await?, &fx.f64s("image.vit.out")?, 1e-2)?;
    let b = compare("f16 logits", &read(gpu, &run.logits).await?, &fx.f64s("image.logits")?, 1e-2)?;
    Ok(format!("{a}; {b}"))
}
