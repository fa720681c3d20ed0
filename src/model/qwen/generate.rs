//! Autoregressive generation over the text decoder: prefill the prompt, then one token per step
//! with the KV cache. Token choice happens on the GPU (argmax, or temperature / top-k / top-p
//! with a seeded uniform draw), after an optional repetition penalty; each step reads back one id.

use super::rope_index::decode_position;
use super::{KvCache, TextModel};
use crate::gpu::{Gpu, Recorder, Staged, Tensor};
use crate::kernels::sample::{argmax, repetition_penalty, sample, Sampling};
use crate::model::{MResult, ModelError};

#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    pub temperature: f32,
    /// 1.0 disables.
    pub top_p: f32,
    /// 0 disables.
    pub top_k: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    /// `None`: greedy (the evaluation setting).
    pub sampling: Option<SamplingConfig>,
    /// 1.0 disables; Qwen's generation_config uses 1.05.
    pub repetition_penalty: f32,
    /// Tokens that end the reply (not included in it).
    pub stop: Vec<u32>,
    pub seed: u64,
}

impl GenerationConfig {
    pub fn greedy(max_new_tokens: usize, stop: Vec<u32>) -> GenerationConfig {
        GenerationConfig { max_new_tokens, sampling: None, repetition_penalty: 1.0, stop, seed: 0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    StopToken,
    MaxTokens,
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct Generated {
    pub tokens: Vec<u32>,
    pub reason: StopReason,
    /// Prompt tokens and the time the prefill and the decode steps took (milliseconds).
    pub prompt_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

/// The prompt as the decoder takes it: embeddings [n, hidden] (vision features already merged
/// in), M-RoPE positions and the rope delta for the tokens that follow.
pub struct Prompt {
    pub embeds: Tensor,
    pub positions: Vec<[i32; 3]>,
    pub delta: i64,
}

fn positions_tensor(gpu: &Gpu, pos: &[[i32; 3]]) -> MResult<Tensor> {
    let flat: Vec<i32> = pos.iter().flatten().copied().collect();
    Ok(gpu.upload_i32(&flat, &[pos.len(), 3])?)
}

/// Generate after `prompt` (the cache must be empty or hold an earlier turn that the prompt
/// continues). `on_token` sees each new id; returning false cancels.
///
/// Without a repetition penalty the steps are pipelined: the step that feeds a token is recorded
/// and submitted, reading that token straight from the GPU, before the token is read back, so
/// the CPU's recording and the readback overlap the GPU's work. If the token ends the reply, that
/// step's KV row is dropped again (`cache.len` steps back); the tokens are the same either way.
pub async fn generate(
    gpu: &Gpu,
    model: &TextModel,
    cache: &mut KvCache,
    prompt: Prompt,
    cfg: &GenerationConfig,
    on_token: &mut dyn FnMut(u32) -> bool,
) -> MResult<Generated> {
    let n = prompt.positions.len();
    if n == 0 || prompt.embeds.rows() != n {
        return Err(ModelError::Input(format!("a prompt of {} embeddings and {n} positions", prompt.embeds.rows())));
    }
    cache.check_room(n + cfg.max_new_tokens.saturating_sub(1))?;
    // The penalty needs every earlier id on the CPU (unique), so it runs step by step.
    let pipelined = cfg.repetition_penalty == 1.0;
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let mut tokens: Vec<u32> = Vec::new();
    let clock = crate::gpu::clock::now_ms;
    let t0 = clock();
    let delta = prompt.delta;
    let mut step = prefill(gpu, model, cache, prompt, cfg, &mut rng)?;
    let mut prefill_ms = None;
    let reason = loop {
        // The step feeding this token is only needed if the reply goes on after it.
        let ahead = if pipelined && tokens.len() + 1 < cfg.max_new_tokens { Some(feed(gpu, model, cache, &step.id, delta, cfg, &tokens, &mut rng)?) } else { None };
        let id = match read_id(gpu, model, &step).await {
            Ok(id) => id,
            Err(e) => {
                if ahead.is_some() {
                    cache.len -= 1; // as if decoding step by step
                }
                return Err(e);
            }
        };
        prefill_ms.get_or_insert_with(|| clock() - t0);
        let end = if cfg.stop.contains(&id) {
            Some(StopReason::StopToken)
        } else {
            tokens.push(id);
            if !on_token(id) {
                Some(StopReason::Cancelled)
            } else if tokens.len() >= cfg.max_new_tokens {
                Some(StopReason::MaxTokens)
            } else {
                None
            }
        };
        if let Some(reason) = end {
            if ahead.is_some() {
                cache.len -= 1;
            }
            break reason;
        }
        step = match ahead {
            Some(s) => s,
            None => {
                let ids = gpu.upload_u32(&[id], &[1])?;
                feed(gpu, model, cache, &ids, delta, cfg, &tokens, &mut rng)?
            }
        };
    };
    let prefill_ms = prefill_ms.unwrap_or(0.0);
    Ok(Generated { tokens, reason, prompt_tokens: n, prefill_ms, decode_ms: clock() - t0 - prefill_ms })
}

/// A submitted step: the chosen id on the GPU and its staged copy for the CPU.
struct Step {
    id: Tensor,
    staged: Staged,
}

/// Record and submit the prefill of `prompt` and the choice of the first token. The prefill's
/// temporaries (a long prompt's are hundreds of MB: its MLP is [tokens, intermediate]) are of
/// no use to the one-row decode steps, so the pool frees them once it is submitted.
fn prefill(gpu: &Gpu, model: &TextModel, cache: &mut KvCache, prompt: Prompt, cfg: &GenerationConfig, rng: &mut fastrand::Rng) -> MResult<Step> {
    let mut rec = Recorder::new(gpu);
    let pos = positions_tensor(gpu, &prompt.positions)?;
    let hidden = model.forward(&mut rec, prompt.embeds, &pos, cache, None)?;
    let last = model.last_row(&mut rec, &hidden)?;
    drop(hidden);
    let logits = model.logits(&mut rec, &last)?;
    let step = choose(gpu, rec, &logits, cfg, &[], rng)?;
    gpu.trim_pool();
    Ok(step)
}

/// Record and submit one decode step over the token in `ids` (U32 [1], on the GPU).
#[allow(clippy::too_many_arguments)]
fn feed(
    gpu: &Gpu,
    model: &TextModel,
    cache: &mut KvCache,
    ids: &Tensor,
    delta: i64,
    cfg: &GenerationConfig,
    seen: &[u32],
    rng: &mut fastrand::Rng,
) -> MResult<Step> {
    let mut rec = Recorder::new(gpu);
    let x = model.embed(&mut rec, ids)?;
    let pos = positions_tensor(gpu, &[decode_position(cache.len, delta)])?;
    let logits = model.decode_logits(&mut rec, x, &pos, cache)?;
    choose(gpu, rec, &logits, cfg, seen, rng)
}

/// Penalty and choice over the one row of logits; submits the recorder with the id staged.
fn choose(gpu: &Gpu, mut rec: Recorder<'_>, logits: &Tensor, cfg: &GenerationConfig, seen: &[u32], rng: &mut fastrand::Rng) -> MResult<Step> {
    if cfg.repetition_penalty != 1.0 && !seen.is_empty() {
        let mut ids = seen.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let t = gpu.upload_u32(&ids, &[ids.len()])?;
        repetition_penalty(&mut rec, logits, 0, &t, cfg.repetition_penalty)?;
    }
    let id = match &cfg.sampling {
        None => argmax(&mut rec, logits, 0)?,
        Some(s) => sample(&mut rec, logits, 0, Sampling { temperature: s.temperature, top_p: s.top_p, top_k: s.top_k, u: rng.f32() })?,
    };
    let staged = rec.stage(&id);
    rec.submit()?;
    Ok(Step { id, staged })
}

/// The id a step chose, read back and checked.
async fn read_id(gpu: &Gpu, model: &TextModel, step: &Step) -> MResult<u32> {
    let raw = gpu.read_staged(&step.staged).await?;
    let id = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if id as usize >= model.cfg.vocab {
        return Err(ModelError::Gpu(crate::gpu::GpuError::Shape { kernel: "sample", msg: format!("token id {id} out of range") }));
    }
    Ok(id)
}
