//! Tokenizer and chat template. The checkpoint's tokenizer.json (Qwen2 byte-level BPE) through
//! the `tokenizers` crate; the Qwen2-VL chat template (spec 5.6) rendered in code; image and video
//! placeholders expanded to one pad token per merged vision token. Special-token ids come from the
//! tokenizer and are checked against the model config.

use tokenizers::Tokenizer;

use super::SpecialTokens;
use crate::model::{MResult, ModelError};

pub const DEFAULT_SYSTEM: &str = "You are a helpful assistant.";

#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Text(String),
    Image,
    Video,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: Vec<Content>,
}

impl Message {
    pub fn user(content: Vec<Content>) -> Message {
        Message { role: "user".into(), content }
    }
    pub fn text(role: &str, text: &str) -> Message {
        Message { role: role.into(), content: vec![Content::Text(text.into())] }
    }
}

/// The prompt text, as transformers renders the Qwen2-VL template.
pub fn render(messages: &[Message], add_generation_prompt: bool) -> String {
    let mut s = String::new();
    for (i, m) in messages.iter().enumerate() {
        if i == 0 && m.role != "system" {
            s += &format!("<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n");
        }
        s += &format!("<|im_start|>{}\n", m.role);
        for c in &m.content {
            match c {
                Content::Text(t) => s += t,
                Content::Image => s += "<|vision_start|><|image_pad|><|vision_end|>",
                Content::Video => s += "<|vision_start|><|video_pad|><|vision_end|>",
            }
        }
        s += "<|im_end|>\n";
    }
    if add_generation_prompt {
        s += "<|im_start|>assistant\n";
    }
    s
}

pub struct QwenTokenizer {
    tok: Tokenizer,
    pub tokens: SpecialTokens,
    /// Ids of every special (added) token, skipped when decoding replies.
    specials: Vec<u32>,
}

impl QwenTokenizer {
    pub fn from_bytes(json: &[u8]) -> MResult<QwenTokenizer> {
        let tok = Tokenizer::from_bytes(json).map_err(|e| ModelError::Tokenizer(format!("tokenizer.json does not parse: {e}")))?;
        let id = |s: &str| tok.token_to_id(s).ok_or_else(|| ModelError::Tokenizer(format!("tokenizer.json lacks the special token {s}")));
        let tokens = SpecialTokens {
            vision_start: id("<|vision_start|>")?,
            vision_end: id("<|vision_end|>")?,
            image_pad: id("<|image_pad|>")?,
            video_pad: id("<|video_pad|>")?,
            eos: vec![id("<|im_end|>")?, id("<|endoftext|>")?],
        };
        let specials = tok.get_added_tokens_decoder().iter().filter(|(_, t)| t.special).map(|(&i, _)| i).collect();
        Ok(QwenTokenizer { tok, tokens, specials })
    }

    /// Fail when the model config names other ids than the tokenizer (a mismatched package).
    pub fn check_config(&self, cfg: &SpecialTokens) -> MResult<()> {
        let t = &self.tokens;
        if (t.vision_start, t.vision_end, t.image_pad, t.video_pad) != (cfg.vision_start, cfg.vision_end, cfg.image_pad, cfg.video_pad) {
            return Err(ModelError::Config(format!("the tokenizer's vision token ids {t:?} differ from the config's {cfg:?}")));
        }
        Ok(())
    }

    pub fn encode(&self, text: &str) -> MResult<Vec<u32>> {
        let e = self.tok.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(e.get_ids().to_vec())
    }

    /// Prompt ids with each image / video placeholder expanded to its count of pad tokens
    /// (`vision_tokens`, in prompt order).
    pub fn prompt_ids(&self, messages: &[Message], vision_tokens: &[usize]) -> MResult<Vec<u32>> {
        let ids = self.encode(&render(messages, true))?;
        let pads = |x: u32| x == self.tokens.image_pad || x == self.tokens.video_pad;
        let found = ids.iter().filter(|&&x| pads(x)).count();
        if found != vision_tokens.len() {
            return Err(ModelError::Input(format!("{found} image/video placeholders for {} images/videos", vision_tokens.len())));
        }
        let mut out = Vec::with_capacity(ids.len() + vision_tokens.iter().sum::<usize>());
        let mut next = vision_tokens.iter();
        for x in ids {
            if pads(x) {
                let n = *next.next().expect("counted");
                out.extend(std::iter::repeat_n(x, n));
            } else {
                out.push(x);
            }
        }
        Ok(out)
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> MResult<String> {
        let ids: Vec<u32> = if skip_special { ids.iter().copied().filter(|i| !self.specials.contains(i)).collect() } else { ids.to_vec() };
        self.tok.decode(&ids, false).map_err(|e| ModelError::Tokenizer(e.to_string()))
    }
}

/// Turns a stream of token ids into text pieces, holding back bytes until they form whole UTF-8
/// characters (a character may span several byte-level tokens).
pub struct TextStream {
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
}

impl Default for TextStream {
    fn default() -> Self {
        Self::new()
    }
}

impl TextStream {
    pub fn new() -> TextStream {
        TextStream { ids: Vec::new(), prefix: 0, read: 0 }
    }

    /// The new text that `id` completes, if any.
    pub fn push(&mut self, tok: &QwenTokenizer, id: u32) -> MResult<Option<String>> {
        self.ids.push(id);
        let before = tok.decode(&self.ids[self.prefix..self.read], true)?;
        let now = tok.decode(&self.ids[self.prefix..], true)?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.is_char_boundary(before.len()) {
            let piece = now[before.len()..].to_string();
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(Some(piece))
        } else {
            Ok(None)
        }
    }

    /// Whatever is still held back (an incomplete character at the end renders as U+FFFD).
    pub fn finish(&mut self, tok: &QwenTokenizer) -> MResult<Option<String>> {
        let before = tok.decode(&self.ids[self.prefix..self.read], true)?;
        let now = tok.decode(&self.ids[self.prefix..], true)?;
        self.prefix = self.ids.len();
        self.read = self.ids.len();
        Ok((now.len() > before.len() && now.is_char_boundary(before.len())).then(|| now[before.len()..].to_string()))
    }
}
