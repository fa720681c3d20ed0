//! The model's dimensions and special tokens, read from the checkpoint's config.json (both the
//! transformers 4.51 layout with text keys at the top level and the newer `text_config`).

use serde_json::Value;

use crate::model::{MResult, ModelError};

#[derive(Clone, Debug, PartialEq)]
pub struct TextConfig {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub eps: f32,
    pub rope_theta: f32,
    pub mrope_section: [usize; 3],
    pub tie_embeddings: bool,
}

impl TextConfig {
    pub fn q_dim(&self) -> usize {
        self.heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct VisionConfig {
    pub depth: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub patch: usize,
    pub temporal_patch: usize,
    pub merge: usize,
    pub window: usize,
    pub fullatt_blocks: Vec<usize>,
    pub out_hidden: usize,
    pub tokens_per_second: f32,
}

/// Token ids the model code needs (the tokenizer's own ids, checked against it when loaded).
#[derive(Clone, Debug, PartialEq)]
pub struct SpecialTokens {
    pub vision_start: u32,
    pub vision_end: u32,
    pub image_pad: u32,
    pub video_pad: u32,
    pub eos: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QwenConfig {
    pub text: TextConfig,
    pub vision: VisionConfig,
    pub tokens: SpecialTokens,
}

fn get<'a>(cfg: &'a Value, key: &str) -> Option<&'a Value> {
    cfg.get(key).or_else(|| cfg.get("text_config").and_then(|t| t.get(key)))
}

fn num(cfg: &Value, key: &str, default: Option<usize>) -> MResult<usize> {
    match get(cfg, key).and_then(Value::as_u64) {
        Some(v) => Ok(v as usize),
        None => default.ok_or_else(|| ModelError::Config(format!("config.json lacks `{key}`"))),
    }
}

fn float(cfg: &Value, key: &str, default: f64) -> f32 {
    get(cfg, key).and_then(Value::as_f64).unwrap_or(default) as f32
}

impl QwenConfig {
    /// Qwen2.5-VL-3B's values where the config is silent.
    pub fn from_json(cfg: &Value) -> MResult<QwenConfig> {
        let hidden = num(cfg, "hidden_size", Some(2048))?;
        let heads = num(cfg, "num_attention_heads", Some(16))?;
        if heads == 0 || hidden % heads != 0 {
            return Err(ModelError::Config(format!("hidden_size {hidden} is not a multiple of {heads} heads")));
        }
        let head_dim = hidden / heads;
        let section: Vec<usize> = get(cfg, "rope_scaling")
            .and_then(|r| r.get("mrope_section"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).map(|v| v as usize).collect())
            .unwrap_or_else(|| vec![16, 24, 24]);
        if section.len() != 3 || section.iter().try_fold(0usize, |a, &b| a.checked_add(b)) != Some(head_dim / 2) {
            return Err(ModelError::Config(format!("mrope_section {section:?} must be 3 numbers summing to head_dim/2 = {}", head_dim / 2)));
        }
        let text = TextConfig {
            hidden,
            intermediate: num(cfg, "intermediate_size", Some(11008))?,
            layers: num(cfg, "num_hidden_layers", Some(36))?,
            heads,
            kv_heads: num(cfg, "num_key_value_heads", Some(2))?,
            head_dim,
            vocab: num(cfg, "vocab_size", Some(151_936))?,
            eps: float(cfg, "rms_norm_eps", 1e-6),
            rope_theta: float(cfg, "rope_theta", 1_000_000.0),
            mrope_section: [section[0], section[1], section[2]],
            tie_embeddings: get(cfg, "tie_word_embeddings").and_then(Value::as_bool).unwrap_or(true),
        };
        if text.kv_heads == 0 || text.heads % text.kv_heads != 0 {
            return Err(ModelError::Config(format!("{} heads are not a multiple of {} KV heads", text.heads, text.kv_heads)));
        }
        let v = cfg.get("vision_config").cloned().unwrap_or(Value::Null);
        let vnum = |k: &str, d: usize| v.get(k).and_then(Value::as_u64).map(|x| x as usize).unwrap_or(d);
        let vision = VisionConfig {
            depth: vnum("depth", 32),
            hidden: vnum("hidden_size", 1280),
            intermediate: vnum("intermediate_size", 3420),
            heads: vnum("num_heads", 16),
            patch: vnum("patch_size", 14),
            temporal_patch: vnum("temporal_patch_size", 2),
            merge: vnum("spatial_merge_size", 2),
            window: vnum("window_size", 112),
            fullatt_blocks: v
                .get("fullatt_block_indexes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).map(|x| x as usize).collect())
                .unwrap_or_else(|| vec![7, 15, 23, 31]),
            out_hidden: vnum("out_hidden_size", hidden),
            tokens_per_second: v.get("tokens_per_second").and_then(Value::as_f64).unwrap_or(2.0) as f32,
        };
        let id = |k: &str, d: u32| get(cfg, k).and_then(Value::as_u64).map(|x| x as u32).unwrap_or(d);
        let mut eos = vec![id("eos_token_id", 151_645)];
        let eot = id("bos_token_id", 151_643); // <|endoftext|> also ends a reply (generation_config)
        if !eos.contains(&eot) {
            eos.push(eot);
        }
        let tokens = SpecialTokens {
            vision_start: id("vision_start_token_id", 151_652),
            vision_end: id("vision_end_token_id", 151_653),
            image_pad: id("image_token_id", 151_655),
            video_pad: id("video_token_id", 151_656),
            eos,
        };
        Ok(QwenConfig { text, vision, tokens })
    }
}
