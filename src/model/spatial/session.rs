//! Questions about one video (or one image, or none): the visual block is encoded once (its
//! tokens are kept on the GPU), and the KV cache of the prompt prefix that questions share (system
//! prompt, user turn start, the whole visual block) is kept too, so a later question prefills only
//! its own tokens. A session without a visual block asks text-only questions, with the chat
//! template Qwen2.5-VL uses for a text prompt.

use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::qwen::chat::{Content, Message, QwenTokenizer};
use crate::model::qwen::generate::{generate, GenerationConfig, Generated, Prompt};
use crate::model::qwen::rope_index::{rope_index, VisionGrid};
use crate::model::qwen::vision::merge_into_prompt;
use crate::model::qwen::KvCache;
use crate::model::spatial::SpatialMllm;
use crate::model::MResult;

/// The visual block of the prompt: its tokens, grid and placeholder (image or video).
struct VisualBlock {
    /// The visual tokens [tokens, hidden] (fused for Spatial-MLLM, the ViT's for Qwen2.5-VL).
    tokens: Tensor,
    grid: VisionGrid,
    content: Content,
}

/// A question's prompt: ids, M-RoPE positions and the rope delta.
pub struct PromptIds {
    pub ids: Vec<u32>,
    pub positions: Vec<[i32; 3]>,
    pub delta: i64,
}

pub struct VideoSession {
    visual: Option<VisualBlock>,
    cache: KvCache,
    /// The token ids whose keys and values the cache holds, in order.
    cached: Vec<u32>,
    /// Tokens the last question prefilled (the rest came from the cache).
    pub last_prefill_tokens: usize,
    /// Tokens of the last question's whole prompt (visual block included).
    pub last_prompt_tokens: usize,
}

impl VideoSession {
    /// `visual` from `SpatialMllm::encode_video`; `capacity` bounds prompt + reply tokens.
    pub fn new(gpu: &Gpu, m: &SpatialMllm, visual: Tensor, grid: VisionGrid, capacity: usize) -> MResult<VideoSession> {
        Self::with_block(gpu, m, Some(VisualBlock { tokens: visual, grid, content: Content::Video }), capacity)
    }

    /// One image: `visual` from `SpatialMllm::encode_image` (grid t = 1, second_per_grid_t 0).
    pub fn image(gpu: &Gpu, m: &SpatialMllm, visual: Tensor, grid: VisionGrid, capacity: usize) -> MResult<VideoSession> {
        Self::with_block(gpu, m, Some(VisualBlock { tokens: visual, grid, content: Content::Image }), capacity)
    }

    /// No visual block: text-only questions.
    pub fn text_only(gpu: &Gpu, m: &SpatialMllm, capacity: usize) -> MResult<VideoSession> {
        Self::with_block(gpu, m, None, capacity)
    }

    fn with_block(gpu: &Gpu, m: &SpatialMllm, visual: Option<VisualBlock>, capacity: usize) -> MResult<VideoSession> {
        Ok(VideoSession { visual, cache: KvCache::new(gpu, &m.text.cfg, capacity)?, cached: Vec::new(), last_prefill_tokens: 0, last_prompt_tokens: 0 })
    }

    /// Visual tokens in the prompt (0 for a text-only session).
    pub fn visual_tokens(&self) -> usize {
        self.visual.as_ref().map_or(0, |v| v.tokens.rows())
    }

    /// The prompt of `question`: the user turn holds the visual block (if any), then the question.
    pub fn prompt(&self, m: &SpatialMllm, tok: &QwenTokenizer, question: &str) -> MResult<PromptIds> {
        let (content, counts) = match &self.visual {
            Some(v) => (vec![v.content.clone(), Content::Text(question.into())], vec![v.tokens.rows()]),
            None => (vec![Content::Text(question.into())], vec![]),
        };
        let ids = tok.prompt_ids(&[Message::user(content)], &counts)?;
        self.prompt_of_ids(m, ids)
    }

    /// The M-RoPE positions of prompt `ids` whose visual block (if any) is this session's.
    pub fn prompt_of_ids(&self, m: &SpatialMllm, ids: Vec<u32>) -> MResult<PromptIds> {
        let grids: Vec<VisionGrid> = self.visual.iter().map(|v| v.grid).collect();
        let (positions, delta) = rope_index(&ids, &grids, &m.cfg.tokens, m.cfg.vision.merge, m.cfg.vision.tokens_per_second)?;
        Ok(PromptIds { ids, positions, delta })
    }

    /// A prompt of the chat template's shape without a tokenizer: 14 fixed ids, the visual block,
    /// 20 more (a question's worth). The benchmarks and the memory plan ask it.
    pub fn synthetic_prompt(&self, m: &SpatialMllm) -> MResult<PromptIds> {
        let t = &m.cfg.tokens;
        let mut ids: Vec<u32> = (0..14).map(|i| (i * 37 % 1000) as u32).collect();
        if let Some(v) = &self.visual {
            let pad = if v.content == Content::Image { t.image_pad } else { t.video_pad };
            ids.push(t.vision_start);
            ids.extend(std::iter::repeat_n(pad, v.tokens.rows()));
            ids.push(t.vision_end);
        }
        ids.extend((0..20).map(|i| (i * 53 % 1000) as u32));
        self.prompt_of_ids(m, ids)
    }

    /// Answer `question` about the video. Only the tokens after the longest prefix already in the
    /// cache are prefilled (the visual block is never encoded or prefilled again while it is shared).
    pub async fn ask(
        &mut self,
        gpu: &Gpu,
        m: &SpatialMllm,
        tok: &QwenTokenizer,
        question: &str,
        cfg: &GenerationConfig,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> MResult<Generated> {
        let prompt = self.prompt(m, tok, question)?;
        self.ask_prompt(gpu, m, prompt, cfg, on_token).await
    }

    /// `ask` with a prompt already made (`prompt` or `prompt_of_ids`; the benchmarks' synthetic
    /// prompts need no tokenizer).
    pub async fn ask_prompt(
        &mut self,
        gpu: &Gpu,
        m: &SpatialMllm,
        prompt: PromptIds,
        cfg: &GenerationConfig,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> MResult<Generated> {
        let PromptIds { ids, positions, delta } = prompt;
        let t = &m.cfg.tokens;
        let need = ids.len() + cfg.max_new_tokens.saturating_sub(1);
        if need > self.cache.capacity {
            // Checked before anything changes: the session stays as it was.
            return Err(crate::model::ModelError::Input(format!(
                "the prompt ({} tokens) and up to {} new tokens overflow the context of {} tokens: ask a shorter question, allow fewer new tokens, or use fewer frames",
                ids.len(),
                cfg.max_new_tokens,
                self.cache.capacity
            )));
        }
        // Reuse the shared prefix, but prefill at least one token (its logits start the reply), and
        // never start inside the visual block (its rows are merged whole).
        let mut keep = self.cached.iter().zip(&ids).take_while(|(a, b)| a == b).count().min(ids.len() - 1);
        let pads = [t.image_pad, t.video_pad];
        if ids[keep..].iter().any(|i| pads.contains(i)) && ids[..keep].iter().any(|i| pads.contains(i)) {
            keep = 0;
        }
        let suffix = &ids[keep..];
        let mut rec = Recorder::new(gpu);
        let embeds = m.text.embed(&mut rec, &gpu.upload_u32(suffix, &[suffix.len()])?)?;
        if let Some(v) = self.visual.as_ref().filter(|_| suffix.iter().any(|i| pads.contains(i))) {
            merge_into_prompt(&mut rec, &embeds, suffix, pads, &v.tokens)?;
        }
        rec.submit()?;
        self.cache.len = keep;
        self.cached.truncate(keep);
        self.last_prefill_tokens = suffix.len();
        self.last_prompt_tokens = ids.len();
        let prompt = Prompt { embeds, positions: positions[keep..].to_vec(), delta };
        match generate(gpu, &m.text, &mut self.cache, prompt, cfg, on_token).await {
            Ok(g) => {
                // The cache now holds the prompt and the reply tokens that were fed back.
                let fed = self.cache.len - ids.len();
                self.cached = ids;
                self.cached.extend_from_slice(&g.tokens[..fed]);
                Ok(g)
            }
            Err(e) => {
                // A failure part-way leaves the cache in an unknown state: forget it.
                self.cache.len = 0;
                self.cached.clear();
                Err(e)
            }
        }
    }
}
