//! The one sequence from a model and its input to streamed answers, which the command line
//! (`native::answer`), the web engine (`web_engine`) and the benchmarks (`bench::spatial`) all
//! call: the visual block's grid (and its seconds per temporal step), the context's capacity
//! (visual tokens + `TEXT_CONTEXT` + the longest reply), the encoding (in one submission, or
//! stage by stage for hosts that report stages), the session, then each question answered with
//! its reply streamed piece by piece. Text-only, image and video sessions, with or without the
//! spatial encoder (a plain Qwen2.5-VL package), take this one path.

use super::{SpatialMllm, VideoInput, VideoSession};
use crate::gpu::{clock::now_ms, Gpu, Recorder};
use crate::model::qwen::chat::{QwenTokenizer, TextStream};
use crate::model::qwen::generate::{GenerationConfig, StopReason};
use crate::model::qwen::rope_index::VisionGrid;
use crate::model::qwen::vision_layout::Grid;
use crate::model::vggt::Frames;
use crate::model::MResult;
use crate::preprocess::VitInput;

/// Prompt tokens the context holds besides the visual block (system prompt, template, question).
pub const TEXT_CONTEXT: usize = 512;

/// Seconds per temporal grid step of a video: qwen-vl-utils' default of 2 frames per temporal
/// patch at 2 fps. Images have no time axis (0: every temporal position is the block's start).
const VIDEO_SECONDS_PER_GRID_T: f32 = 1.0;

/// The KV cache's capacity for a visual block of `visual_tokens` and replies of up to
/// `max_new_tokens`.
pub fn context_capacity(visual_tokens: usize, max_new_tokens: usize) -> usize {
    visual_tokens + TEXT_CONTEXT + max_new_tokens
}

/// The ViT grid (t, h, w in patches) of preprocessed frames or an image.
pub fn grid_of(vit: &VitInput) -> Grid {
    let [t, h, w] = vit.grid_thw;
    Grid { t, h, w }
}

/// What the prompt's visual block is made of.
pub enum Visual<'a> {
    /// No visual block: text-only questions.
    Text,
    /// A video: the ViT's patches and VGGT's frames of the same preprocessed frames (VGGT's are
    /// unused without a spatial encoder).
    Video { vit: &'a VitInput, vggt: Frames<'a> },
    /// One image (`grid_thw` t = 1), encoded by the ViT alone as Qwen2.5-VL encodes an image.
    Image(&'a VitInput),
}

impl Visual<'_> {
    /// "text", "video" or "image".
    pub fn kind(&self) -> &'static str {
        match self {
            Visual::Text => "text",
            Visual::Video { .. } => "video",
            Visual::Image(_) => "image",
        }
    }
}

/// A session opened on an encoded input.
pub struct Opened {
    pub session: VideoSession,
    /// Milliseconds from the start of encoding to its end on the GPU (0 for text).
    pub encode_ms: f64,
}

/// Encode `visual` once and open the session its questions go to, sized for replies of up to
/// `max_new_tokens`. With `on_stage`, a video is encoded stage by stage, each finished on the GPU
/// before the next starts, and `on_stage` hears "ViT" (then "VGGT" and "connector" with the
/// spatial encoder) as each starts; without, in one submission.
pub async fn open_session(gpu: &Gpu, m: &SpatialMllm, visual: Visual<'_>, max_new_tokens: usize, on_stage: Option<&mut dyn FnMut(&str)>) -> MResult<Opened> {
    let t0 = now_ms();
    match visual {
        Visual::Text => Ok(Opened { session: VideoSession::text_only(gpu, m, context_capacity(0, max_new_tokens))?, encode_ms: 0.0 }),
        Visual::Video { vit, vggt } => {
            let grid = grid_of(vit);
            let input = VideoInput { vit_patches: &vit.pixel_values, grid, frames: vggt };
            let tokens = match on_stage {
                Some(on_stage) => m.encode_video_staged(gpu, &input, on_stage).await?,
                None => {
                    let mut rec = Recorder::new(gpu);
                    let tokens = m.encode_video(&mut rec, &input, None)?;
                    rec.submit()?;
                    gpu.finish().await?;
                    tokens
                }
            };
            let encode_ms = now_ms() - t0;
            let vgrid = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: VIDEO_SECONDS_PER_GRID_T };
            let capacity = context_capacity(tokens.rows(), max_new_tokens);
            Ok(Opened { session: VideoSession::new(gpu, m, tokens, vgrid, capacity)?, encode_ms })
        }
        Visual::Image(vit) => {
            if let Some(on_stage) = on_stage {
                on_stage("ViT");
            }
            let grid = grid_of(vit);
            let mut rec = Recorder::new(gpu);
            let tokens = m.encode_image(&mut rec, &vit.pixel_values, grid)?;
            rec.submit()?;
            gpu.finish().await?;
            let encode_ms = now_ms() - t0;
            let vgrid = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: 0.0 };
            let capacity = context_capacity(tokens.rows(), max_new_tokens);
            Ok(Opened { session: VideoSession::image(gpu, m, tokens, vgrid, capacity)?, encode_ms })
        }
    }
}

/// The reply to one question.
#[derive(Clone, Debug)]
pub struct Reply {
    pub text: String,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// Tokens of the whole prompt, and of those the ones prefilled (the rest came from the cache).
    pub prompt_tokens: usize,
    pub prefilled_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

impl VideoSession {
    /// Ask `question`: `on_piece` receives the reply as it streams (whole UTF-8 characters), and
    /// generation stops early (the reply is what came so far) once `stop()` is true.
    #[allow(clippy::too_many_arguments)]
    pub async fn answer(
        &mut self,
        gpu: &Gpu,
        m: &SpatialMllm,
        tok: &QwenTokenizer,
        question: &str,
        gen: &GenerationConfig,
        on_piece: &mut dyn FnMut(&str),
        stop: &dyn Fn() -> bool,
    ) -> MResult<Reply> {
        let mut stream = TextStream::new();
        let mut text = String::new();
        let mut stream_err = None;
        let mut on_token = |id: u32| {
            match stream.push(tok, id) {
                Ok(Some(p)) => {
                    on_piece(&p);
                    text += &p;
                }
                Ok(None) => {}
                Err(e) => stream_err = Some(e),
            }
            !stop()
        };
        let g = self.ask(gpu, m, tok, question, gen, &mut on_token).await?;
        if let Some(e) = stream_err {
            return Err(e);
        }
        if let Some(p) = stream.finish(tok)? {
            on_piece(&p);
            text += &p;
        }
        Ok(Reply {
            text,
            tokens: g.tokens,
            stop: g.reason,
            prompt_tokens: self.last_prompt_tokens,
            prefilled_tokens: self.last_prefill_tokens,
            prefill_ms: g.prefill_ms,
            decode_ms: g.decode_ms,
        })
    }
}
