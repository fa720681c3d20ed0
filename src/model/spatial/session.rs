//! Questions about one video: the video is encoded once (its fused visual tokens are kept on the
//! GPU), and the KV cache of the prompt prefix that questions share (system prompt, user turn start,
//! the whole video block) is kept too, so a later question prefills only its own tokens.

use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::qwen::chat::{Content, Message, QwenTokenizer};
use crate::model::qwen::generate::{generate, GenerationConfig, Generated, Prompt};
use crate::model::qwen::rope_index::{rope_index, VisionGrid};
use crate::model::qwen::vision::merge_into_prompt;
use crate::model::qwen::KvCache;
use crate::model::spatial::SpatialMllm;
use crate::model::MResult;

pub struct VideoSession {
    /// The fused visual tokens [tokens, hidden] of the video.
    visual: Tensor,
    grid: VisionGrid,
    cache: KvCache,
    /// The token ids whose keys and values the cache holds, in order.
    cached: Vec<u32>,
    /// Tokens the last question prefilled (the rest came from the cache).
    pub last_prefill_tokens: usize,
    /// Tokens of the last question's whole prompt (video block included).
    pub last_prompt_tokens: usize,
}

impl VideoSession {
    /// `visual` from `SpatialMllm::encode_video`; `capacity` bounds prompt + reply tokens.
    pub fn new(gpu: &Gpu, m: &SpatialMllm, visual: Tensor, grid: VisionGrid, capacity: usize) -> MResult<VideoSession> {
        Ok(VideoSession { visual, grid, cache: KvCache::new(gpu, &m.text.cfg, capacity)?, cached: Vec::new(), last_prefill_tokens: 0, last_prompt_tokens: 0 })
    }

    /// Answer `question` about the video. Only the tokens after the longest prefix already in the
    /// cache are prefilled (the video block is never encoded or prefilled again while it is shared).
    pub async fn ask(
        &mut self,
        gpu: &Gpu,
        m: &SpatialMllm,
        tok: &QwenTokenizer,
        question: &str,
        cfg: &GenerationConfig,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> MResult<Generated> {
        let messages = [Message::user(vec![Content::Video, Content::Text(question.into())])];
        let ids = tok.prompt_ids(&messages, &[self.visual.rows()])?;
        let t = &m.cfg.tokens;
        let (positions, delta) = rope_index(&ids, &[self.grid], t, m.cfg.vision.merge, m.cfg.vision.tokens_per_second)?;
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
        // never start inside the video block (its rows are merged whole).
        let mut keep = self.cached.iter().zip(&ids).take_while(|(a, b)| a == b).count().min(ids.len() - 1);
        let pads = [t.image_pad, t.video_pad];
        if ids[keep..].iter().any(|i| pads.contains(i)) && ids[..keep].iter().any(|i| pads.contains(i)) {
            keep = 0;
        }
        let suffix = &ids[keep..];
        let mut rec = Recorder::new(gpu);
        let embeds = m.text.embed(&mut rec, &gpu.upload_u32(suffix, &[suffix.len()])?)?;
        if suffix.iter().any(|i| pads.contains(i)) {
            merge_into_prompt(&mut rec, &embeds, suffix, pads, &self.visual)?;
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
