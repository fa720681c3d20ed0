//! Spatial-MLLM against the upstream code on the tiny v1.0 and v1.1 fixtures
//! (`tests/fixtures/spatial-mllm-v1.*`), shared by the native tests (`tests/spatial.rs`) and the
//! browser harness: from the decoded frames (through our preprocessing) to the ViT output, every VGGT block, the connector, the
//! prompt ids and M-RoPE positions, the logits and 32 greedy tokens.

use super::reference_file::ReferenceFile;
use super::util::{compare, CaseOutcome};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::qwen::chat::{Content, Message, QwenTokenizer};
use crate::model::qwen::generate::{generate, GenerationConfig, Prompt};
use crate::model::qwen::rope_index::{rope_index, VisionGrid};
use crate::model::qwen::vision::merge_into_prompt;
use crate::model::qwen::vision_layout::Grid;
use crate::model::qwen::KvCache;
use crate::model::spatial::{Generation, SpatialMllm, VideoInput, VisualTaps};
use crate::preprocess::{qwen_video_input, vggt_input, RgbFrames, VggtInput, VitInput};

pub const F32_TOL: f64 = 1e-3;
const NEW_TOKENS: usize = 32;
const QUESTION: &str = "How many chairs are there?";

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn read(gpu: &Gpu, t: &Tensor) -> Result<Vec<f32>, String> {
    gpu.read_f32(t).await.map_err(err)
}

pub struct SpatialFixture {
    pub reference: ReferenceFile,
    meta: serde_json::Value,
    pub tokenizer: QwenTokenizer,
}

impl SpatialFixture {
    pub fn new(reference: Vec<u8>, reference_json: &str, tokenizer_json: &[u8]) -> Result<SpatialFixture, String> {
        Ok(SpatialFixture {
            reference: ReferenceFile::new(reference)?,
            meta: serde_json::from_str(reference_json).map_err(|e| format!("reference.json: {e}"))?,
            tokenizer: QwenTokenizer::from_bytes(tokenizer_json).map_err(err)?,
        })
    }

    /// The decoded frames [S, H, W, 3] through our preprocessing: the ViT's rows (checked equal to
    /// the processor's `pixel_values_videos`) and VGGT's [0, 1] frames.
    pub fn inputs(&self) -> Result<(VitInput, VggtInput), String> {
        let shape = self.reference.shape("video.frames_u8")?;
        let [s, h, w, 3] = shape[..] else { return Err(format!("frames_u8 of shape {shape:?}")) };
        let frames = RgbFrames::new(s, h, w, self.reference.u8s("video.frames_u8")?).map_err(err)?;
        // The frames are at a multiple of 28 already, as qwen-vl-utils hands them to the processor.
        let vit = qwen_video_input(&frames).map_err(err)?;
        let want = self.reference.f32s("video.pixel_values_videos")?;
        if vit.pixel_values != want {
            return Err("our ViT rows differ from the processor's pixel_values_videos".into());
        }
        let g = self.reference.f64s("video.video_grid_thw")?;
        if vit.grid_thw.iter().zip(&g).any(|(a, &b)| *a as f64 != b) {
            return Err(format!("grid {:?}, the processor's {g:?}", vit.grid_thw));
        }
        Ok((vit, vggt_input(&frames)))
    }

    fn second_per_grid_t(&self) -> Result<f32, String> {
        Ok(self.meta["cases"]["video"]["second_per_grid_ts"][0].as_f64().ok_or("reference.json lacks second_per_grid_ts")? as f32)
    }
}

fn grid_of(vit: &VitInput) -> Grid {
    Grid { t: vit.grid_thw[0], h: vit.grid_thw[1], w: vit.grid_thw[2] }
}

/// Every check, in the order the harnesses run them.
pub const CHECKS: &[&str] = &["video to answer", "questions reuse the video", "frame selection on a room"];

pub async fn run_check(gpu: &Gpu, fx: &SpatialFixture, m: &SpatialMllm, name: &str) -> CaseOutcome {
    match name {
        "video to answer" => check_video(gpu, fx, m).await,
        "questions reuse the video" => check_session(gpu, fx, m).await,
        "frame selection on a room" => super::sampling_cases::check_room_selection(),
        other => Err(format!("no check named {other:?}")),
    }
}

/// From the frames to the fused tokens, the logits and 32 greedy tokens, checked stage by stage.
pub async fn check_video(gpu: &Gpu, fx: &SpatialFixture, m: &SpatialMllm) -> CaseOutcome {
    let r = &fx.reference;
    let (vit_in, vggt_in) = fx.inputs()?;
    let grid = grid_of(&vit_in);
    let input = VideoInput { vit_patches: &vit_in.pixel_values, grid, frames: vggt_in.as_frames() };
    let mut rec = Recorder::new(gpu);
    let mut taps = VisualTaps::default();
    let fused = m.encode_video(&mut rec, &input, Some(&mut taps)).map_err(err)?;

    // The prompt, its ids and positions.
    let messages = [Message::user(vec![Content::Video, Content::Text(QUESTION.into())])];
    let ids = fx.tokenizer.prompt_ids(&messages, &[m.vision.tokens(grid)]).map_err(err)?;
    let want_ids: Vec<u32> = r.f64s("video.input_ids")?.into_iter().map(|v| v as u32).collect();
    if ids != want_ids {
        return Err("the prompt ids differ from upstream's".into());
    }
    let vg = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: fx.second_per_grid_t()? };
    let tokens = &m.cfg.tokens;
    let (positions, delta) = rope_index(&ids, &[vg], tokens, m.cfg.vision.merge, m.cfg.vision.tokens_per_second).map_err(err)?;
    let want_pos = r.f64s("video.position_ids")?;
    let n = ids.len();
    if (0..n).any(|i| (0..3).any(|c| positions[i][c] as f64 != want_pos[c * n + i])) {
        return Err("the M-RoPE positions differ from upstream's".into());
    }

    let embeds = m.text.embed(&mut rec, &gpu.upload_u32(&ids, &[n]).map_err(err)?).map_err(err)?;
    merge_into_prompt(&mut rec, &embeds, &ids, [tokens.image_pad, tokens.video_pad], &fused).map_err(err)?;
    let mut cache = KvCache::new(gpu, &m.text.cfg, n + NEW_TOKENS).map_err(err)?;
    let pos: Vec<i32> = positions.iter().flatten().copied().collect();
    let hidden = m.text.forward(&mut rec, embeds.clone(), &gpu.upload_i32(&pos, &[n, 3]).map_err(err)?, &mut cache, None).map_err(err)?;
    let logits = m.text.logits(&mut rec, &hidden).map_err(err)?;
    rec.submit().map_err(err)?;

    let mut report = vec![compare("vit out", &read(gpu, taps.vit.as_ref().ok_or("no vit tap")?).await?, &r.f64s("video.vit.out")?, F32_TOL)?];
    let a = &taps.aggregator;
    for (i, (f, gl)) in a.frame_blocks.iter().zip(&a.global_blocks).enumerate() {
        report.push(compare(&format!("vggt frame {i}"), &read(gpu, f).await?, &r.f64s(&format!("video.vggt.frame.{i}"))?, F32_TOL)?);
        report.push(compare(&format!("vggt global {i}"), &read(gpu, gl).await?, &r.f64s(&format!("video.vggt.global.{i}"))?, F32_TOL)?);
    }
    // v1.1's hook saw the connector's sum; v1.0's the merger's spatial embeddings alone.
    let (what, t) = match m.spatial_encoder("the spatial parity check").map_err(err)?.generation {
        Generation::V11 => ("fused tokens", &fused),
        Generation::V10 => ("spatial embeddings", taps.spatial.as_ref().ok_or("no spatial tap")?),
    };
    report.push(compare(what, &read(gpu, t).await?, &r.f64s("video.connector.out")?, F32_TOL)?);
    report.push(compare("logits", &read(gpu, &logits).await?, &r.f64s("video.logits")?, F32_TOL)?);

    let mut cache = KvCache::new(gpu, &m.text.cfg, n + NEW_TOKENS).map_err(err)?;
    let gen =
        generate(gpu, &m.text, &mut cache, Prompt { embeds, positions, delta }, &GenerationConfig::greedy(NEW_TOKENS, vec![]), &mut |_| true).await.map_err(err)?;
    let want: Vec<u32> = r.f64s("video.generated")?.into_iter().map(|v| v as u32).collect();
    if gen.tokens != want {
        return Err(format!("greedy tokens {:?}, upstream {:?}", gen.tokens, want));
    }
    report.push(format!("{NEW_TOKENS} greedy tokens identical"));
    Ok(report.join("; "))
}

/// Reuse: one encoding of the video, three questions. The first answer equals upstream's; the
/// second (another question) equals a fresh session's answer (its video encoded stage by stage)
/// while prefilling only its own tokens; asking the first again reproduces the first answer; an overflowing question is refused
/// without disturbing the session.
pub async fn check_session(gpu: &Gpu, fx: &SpatialFixture, m: &SpatialMllm) -> CaseOutcome {
    use crate::model::spatial::VideoSession;
    let r = &fx.reference;
    let (vit_in, vggt_in) = fx.inputs()?;
    let grid = grid_of(&vit_in);
    let vgrid = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: fx.second_per_grid_t()? };
    let input = VideoInput { vit_patches: &vit_in.pixel_values, grid, frames: vggt_in.as_frames() };
    let encode = || -> Result<Tensor, String> {
        let mut rec = Recorder::new(gpu);
        let v = m.encode_video(&mut rec, &input, None).map_err(err)?;
        rec.submit().map_err(err)?;
        Ok(v)
    };
    let cfg = GenerationConfig::greedy(NEW_TOKENS, vec![]);
    let capacity = 160;
    let mut session = VideoSession::new(gpu, m, encode()?, vgrid, capacity).map_err(err)?;
    let want: Vec<u32> = r.f64s("video.generated")?.into_iter().map(|v| v as u32).collect();
    let first = session.ask(gpu, m, &fx.tokenizer, QUESTION, &cfg, &mut |_| true).await.map_err(err)?;
    if first.tokens != want {
        return Err(format!("first question: {:?}, upstream {:?}", first.tokens, want));
    }
    let full = session.last_prefill_tokens;
    let other = "How far is the sofa from the door?";
    let second = session.ask(gpu, m, &fx.tokenizer, other, &cfg, &mut |_| true).await.map_err(err)?;
    let reused = session.last_prefill_tokens;
    // The fresh session's video is encoded stage by stage (as the web engine does).
    let mut stages = Vec::new();
    let staged = m.encode_video_staged(gpu, &input, &mut |s| stages.push(s.to_string())).await.map_err(err)?;
    if stages != ["ViT", "VGGT", "connector"] {
        return Err(format!("staged encoding reported stages {stages:?}"));
    }
    let mut fresh = VideoSession::new(gpu, m, staged, vgrid, capacity).map_err(err)?;
    let alone = fresh.ask(gpu, m, &fx.tokenizer, other, &cfg, &mut |_| true).await.map_err(err)?;
    if second.tokens != alone.tokens {
        return Err(format!("second question with the cached prefix: {:?}; in a fresh session (staged encoding): {:?}", second.tokens, alone.tokens));
    }
    if reused >= full / 2 {
        return Err(format!("the second question prefilled {reused} tokens of {full}: the video block was not reused"));
    }
    let long = "why? ".repeat(60);
    if session.ask(gpu, m, &fx.tokenizer, &long, &cfg, &mut |_| true).await.is_ok() {
        return Err("a question that overflows the context was accepted".into());
    }
    let again = session.ask(gpu, m, &fx.tokenizer, QUESTION, &cfg, &mut |_| true).await.map_err(err)?;
    if again.tokens != want {
        return Err("asking the first question again gave another answer".into());
    }
    Ok(format!("3 answers from one encoding; the second question prefilled {reused} of {full} tokens"))
}
