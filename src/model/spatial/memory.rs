//! Memory estimates from the config alone (no GPU): the weights, the activations of encoding a
//! video and answering about it, and the largest single buffer. The largest buffer decides
//! whether the work can run at all (WebGPU caps one storage binding, often at 128 MiB to 2 GiB),
//! so the engine refuses work that would exceed it before any GPU work, and the page can check a
//! model against the adapter before downloading it.
//!
//! Activations follow the engine's memory plan (measured in dry runs by `tests/memory_peak.rs`):
//! each stage (ViT, VGGT, connector, prefill) keeps its temporaries in the buffer pool for reuse
//! while it runs and frees them when it ends, so the peak is the largest stage plus what it
//! carries (the ViT's output, VGGT's kept layer, the fused tokens, the KV cache). Sizes are
//! rounded up to the pool's buckets. With n ViT patches (frames/2 · h/14 · w/14) and T VGGT tokens
//! (frames · (1 + registers + h/14 · w/14)), the dominant buffers are the ViT's fused qkv
//! [n, 3 · 1280] and MLP [n, 3420]; the aggregator's token-wide buffers [T, 1024] (about six at a
//! time; its MLP runs in chunks of `MLP_CHUNK` tokens and attention keeps no score matrix, so
//! nothing grows with the square of the tokens); the decoder's MLP over the prompt
//! [n/4 + text, 11008] and the KV cache. The connector's 8 · 2048-wide rows run in passes of at
//! most `PASS_BYTES`.

use super::connector::PASS_BYTES;
use super::pipeline::context_capacity;
use crate::gpu::{BufferPool, GpuError};
use crate::model::qwen::QwenConfig;
use crate::model::vggt::aggregator::MLP_CHUNK;
use crate::model::{MResult, ModelError};
use crate::weights::layout::ModelKind;
use crate::weights::manifest::Manifest;
use crate::weights::shapes::VggtDims;

/// Prompt tokens besides the video's (system prompt, chat template, a question).
pub const TEXT_TOKENS: usize = 256;
/// Reply tokens the context is sized for in estimates: the app's longest answer.
pub const REPLY_TOKENS: usize = 1024;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryEstimate {
    /// The weights as stored in the package (what the GPU holds).
    pub weight_bytes: u64,
    /// Activations at their peak (the largest stage plus what outlives it, and the KV cache).
    pub activation_bytes: u64,
    /// The largest single buffer (activation or weight part) and what it is.
    pub largest_buffer_bytes: u64,
    pub largest: String,
}

impl MemoryEstimate {
    /// Refuse work whose largest buffer exceeds `limit` bytes (the device's binding limit).
    pub fn check(&self, limit: u64) -> Result<(), GpuError> {
        if self.largest_buffer_bytes > limit {
            return Err(GpuError::WorkTooLarge { what: self.largest.clone(), bytes: self.largest_buffer_bytes, limit });
        }
        Ok(())
    }
}

/// Buffers of one pass: the largest, and the sum of each stage's.
struct Tally {
    act: u64,
    largest: (u64, String),
    stage: u64,
    peak: u64,
}

impl Tally {
    fn new(act_bytes: usize) -> Tally {
        Tally { act: act_bytes as u64, largest: (0, String::new()), stage: 0, peak: 0 }
    }
    /// `count` buffers of `rows` x `cols` activations, held (in use or pooled for reuse) until
    /// the current stage ends; returns their bytes as the pool rounds them.
    fn bufs(&mut self, what: &str, count: usize, rows: usize, cols: usize) -> u64 {
        let b = rows as u64 * cols as u64 * self.act;
        if b > self.largest.0 {
            self.largest = (b, format!("{what} [{rows} x {cols}]"));
        }
        let held = count as u64 * BufferPool::bucket(b);
        self.stage += held;
        held
    }
    fn buf(&mut self, what: &str, rows: usize, cols: usize) -> u64 {
        self.bufs(what, 1, rows, cols)
    }
    /// End a stage, with `carried` bytes from earlier stages alive alongside it.
    fn end_stage(&mut self, carried: u64) {
        self.peak = self.peak.max(self.stage + carried);
        self.stage = 0;
    }
}

/// Encoding `frames` frames of `height` x `width` px (multiples of 28, as the ViT takes them;
/// an odd count is padded) and answering in a session sized as the app sizes it
/// (`context_capacity` of the video and `REPLY_TOKENS`) with a prompt of the video and `TEXT_TOKENS`; `vggt` None
/// for a plain Qwen2.5-VL. Activations of `act_bytes` (2: f16, 4: f32).
pub fn video_activations(cfg: &QwenConfig, vggt: Option<&VggtDims>, frames: usize, height: usize, width: usize, act_bytes: usize) -> MemoryEstimate {
    let v = &cfg.vision;
    let t = &cfg.text;
    let frames = frames.next_multiple_of(v.temporal_patch.max(1));
    let (gh, gw) = (height / v.patch.max(1), width / v.patch.max(1));
    let n = frames / v.temporal_patch.max(1) * gh * gw;
    let unit = v.merge * v.merge;
    let visual = n / unit.max(1);
    let mut tl = Tally::new(act_bytes);

    // ViT: the patches; a block's input, its normed input (later the attention's output) and its
    // output (the MLP reuses them); the fused qkv; gate and up; the merger's output, gathered.
    tl.buf("the ViT's patches", n, 3 * v.temporal_patch * v.patch * v.patch);
    tl.bufs("the ViT's hidden states", 3, n, v.hidden);
    tl.buf("the ViT's qkv", n, 3 * v.hidden);
    tl.bufs("the ViT's MLP", 2, n, v.intermediate);
    tl.buf("the ViT's merger", visual, v.out_hidden);
    let vit_out = tl.buf("the ViT's output", visual, v.out_hidden);
    tl.end_stage(0);

    let mut carried = vit_out;
    if let Some(d) = vggt {
        let kept = aggregator(&mut tl, d, frames, height, width, 1);
        tl.end_stage(carried);
        // Connector: 8 patch tokens (2 frames x 2x2) per merged token; the regrouped features,
        // their norm and the hidden layer, in passes of at most `PASS_BYTES`; the spatial
        // embeddings and the fused tokens.
        let wide = 8 * 2 * d.dim;
        let per_pass = (PASS_BYTES / (wide * act_bytes)).clamp(1, visual.max(1));
        let pass = visual.div_ceil(visual.div_ceil(per_pass).max(1));
        tl.bufs("the connector's pass", 3, pass, wide);
        tl.buf("a pass's spatial embeddings", pass, t.hidden);
        tl.buf("the spatial embeddings", visual, t.hidden);
        carried = tl.buf("the fused visual tokens", visual, t.hidden);
        tl.end_stage(vit_out + kept);
    }

    // Prefill of the prompt (the video's tokens and the text) with the KV cache: per layer the
    // input, normed states, attention output, the sums after attention and after the MLP, the
    // MLP's normed input; q, k, v; the MLP's gate and up.
    let prompt = visual + TEXT_TOKENS;
    let capacity = context_capacity(visual, REPLY_TOKENS);
    let mut cache = Tally::new(act_bytes);
    let cache = cache.bufs("the KV cache", 2 * t.layers, capacity, t.kv_dim());
    tl.buf("the prompt's embeddings", prompt, t.hidden);
    tl.bufs("the decoder's hidden states", 5, prompt, t.hidden);
    tl.buf("the decoder's q", prompt, t.q_dim());
    tl.bufs("the decoder's k and v", 2, prompt, t.kv_dim());
    tl.bufs("the decoder's MLP", 2, prompt, t.intermediate);
    tl.end_stage(carried + cache);
    MemoryEstimate { weight_bytes: 0, activation_bytes: tl.peak, largest_buffer_bytes: tl.largest.0, largest: tl.largest.1 }
}

/// The aggregator's buffers (DINO's patches, about six token-wide buffers at a time, the
/// chunked MLP) and `kept` layers, each kept as its frame and global halves (two of the
/// token-wide buffers for the last layer, more for earlier ones); returns the kept layers' bytes.
fn aggregator(tl: &mut Tally, d: &VggtDims, frames: usize, height: usize, width: usize, kept: usize) -> u64 {
    let hw = (height / d.patch.max(1)) * (width / d.patch.max(1));
    let tokens = frames * (1 + d.registers + hw);
    tl.buf("VGGT's patches", frames * hw, 3 * d.patch * d.patch);
    tl.bufs("VGGT's token-wide buffers", 6, tokens, d.dim);
    let chunk = tokens.min(MLP_CHUNK);
    tl.buf("VGGT's MLP", chunk, d.mlp.max(d.dino_mlp));
    tl.bufs("VGGT's MLP chunks", 4, chunk, d.dim);
    // The last kept layer is two of the token-wide buffers; earlier ones stay alive besides.
    if kept > 1 {
        tl.bufs("the kept VGGT layers' halves", 2 * (kept - 1), tokens, d.dim);
    }
    kept as u64 * 2 * BufferPool::bucket(tl.act * (tokens * d.dim) as u64)
}

/// VGGT's frame sampling over `frames` candidates of `height` x `width` px (after its crop
/// preprocessing): the aggregator keeping the DPT heads' layers, then the point head (run in
/// frame chunks that fit the binding limit, so only its per-frame size counts).
pub fn sampler_activations(d: &VggtDims, frames: usize, height: usize, width: usize, act_bytes: usize) -> MemoryEstimate {
    let (ph, pw) = (height / d.patch.max(1), width / d.patch.max(1));
    let mut tl = Tally::new(act_bytes);
    aggregator(&mut tl, d, frames, height, width, 5);
    // The point head's outputs (f32): xyz and confidence per pixel.
    let px = frames * ph * d.patch * pw * d.patch;
    let mut t32 = Tally::new(4);
    t32.buf("the point maps", px, 3);
    t32.buf("the confidences", px, 1);
    let heads = t32.stage;
    tl.end_stage(heads);
    let (mut largest, mut what) = tl.largest;
    if t32.largest.0 > largest {
        (largest, what) = t32.largest;
    }
    MemoryEstimate { weight_bytes: 0, activation_bytes: tl.peak, largest_buffer_bytes: largest, largest: what }
}

/// From a package's manifest: the weights, and the activations of `frames` frames of
/// `height` x `width` px. For a Spatial-MLLM or Qwen2.5-VL package the frames are what
/// `encode_video` gets (with `resize`, resized as qwen-vl-utils does for this many frames; else
/// taken as they are, rounded down to multiples of 28); for a VGGT package they are the
/// sampler's input after its crop preprocessing (rounded down to multiples of 14).
pub fn estimate_package(manifest: &Manifest, frames: usize, width: usize, height: usize, act_bytes: usize, resize: bool) -> MResult<MemoryEstimate> {
    if frames == 0 || width == 0 || height == 0 {
        return Err(ModelError::Input(format!("{frames} frames of {width}x{height} px: nothing to estimate")));
    }
    let kind = ModelKind::from_id(&manifest.model_kind).ok_or_else(|| ModelError::Config(format!("unknown model kind {:?}", manifest.model_kind)))?;
    let mut est = match kind {
        ModelKind::Vggt => {
            let d = VggtDims::from_config(kind, &manifest.config);
            let (h, w) = (height / d.patch * d.patch, width / d.patch * d.patch);
            sampler_activations(&d, frames, h, w, act_bytes)
        }
        _ => {
            let cfg = QwenConfig::from_json(&manifest.config)?;
            let frames = frames.next_multiple_of(2);
            let (h, w) = if resize {
                crate::preprocess::video_frame_size(height, width, frames).map_err(|e| ModelError::Input(e.to_string()))?
            } else {
                (height / 28 * 28, width / 28 * 28)
            };
            let dims = kind.has_vggt().then(|| VggtDims::from_config(kind, &manifest.config));
            video_activations(&cfg, dims.as_ref(), frames, h, w, act_bytes)
        }
    };
    let parts = manifest.tensors.iter().flat_map(|(name, t)| t.parts.iter().map(move |p| (name, p.bytes)));
    for (name, bytes) in parts {
        est.weight_bytes += bytes;
        if bytes > est.largest_buffer_bytes {
            est.largest_buffer_bytes = bytes;
            est.largest = format!("weight {name}");
        }
    }
    Ok(est)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen3b() -> QwenConfig {
        QwenConfig::from_json(&serde_json::json!({})).unwrap()
    }

    #[test]
    fn the_largest_buffers_of_a_3b_model() {
        // 16 frames of 476 x 644 (spec 2.1): 8 x 34 x 46 = 12 512 patches; 3 128 merged tokens.
        let cfg = qwen3b();
        let d = VggtDims::from_config(ModelKind::SpatialMllmV11, &serde_json::json!({}));
        let e = video_activations(&cfg, Some(&d), 16, 476, 644, 2);
        // The connector runs in row passes, so its [3 128 x 16 384] features never decide; the
        // largest buffer is the ViT's fused qkv [12 512 x 3 840], above VGGT's kept halves.
        let half = 16 * (5 + 34 * 46) * 1024 * 2;
        let connector = 3128 * 16384 * 2;
        let qkv = 12_512 * 3840 * 2;
        assert!(qkv > half && connector > qkv);
        assert_eq!(e.largest_buffer_bytes, qkv as u64, "{}", e.largest);
        assert!(e.largest.contains("the ViT's qkv"), "{}", e.largest);
        // Stage by stage (`tests/memory_peak.rs` measures 432 MiB): well within 1 GiB, and at
        // least the ViT's MLP, qkv and hidden states.
        assert!(e.activation_bytes <= 1 << 30 && e.activation_bytes > 4 * qkv as u64, "{}", e.activation_bytes);
        // Twice the frames, twice the largest buffer; f32 twice f16.
        let e32 = video_activations(&cfg, Some(&d), 32, 476, 644, 4);
        assert_eq!(e32.largest_buffer_bytes, 4 * qkv as u64);
        // Without VGGT the ViT's qkv is the largest.
        let q = video_activations(&cfg, None, 16, 476, 644, 2);
        assert_eq!(q.largest_buffer_bytes, qkv as u64, "{}", q.largest);
        assert!(q.activation_bytes <= e.activation_bytes);
        // The refusal names the bytes and the limit.
        let err = e.check(64 << 20).unwrap_err().to_string();
        assert!(err.contains(&qkv.to_string()) && err.contains(&(64u64 << 20).to_string()) && err.contains("fewer frames"), "{err}");
        assert!(e.check(1 << 30).is_ok());
    }

    #[test]
    fn estimates_from_a_manifest() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/spatial-mllm-v1.1/config.json")).unwrap();
        let config: serde_json::Value = serde_json::from_str(&text).unwrap();
        let part = |shard, bytes| crate::weights::manifest::PartEntry { shard, offset: 0, bytes, row_start: 0, row_end: 1, scale_offset: 0 };
        let tensor = |bytes| crate::weights::manifest::TensorEntry {
            shape: vec![1],
            rows: 1,
            cols: 1,
            format: crate::weights::quant::WeightFormat::F32,
            parts: vec![part(0, bytes)],
        };
        let m = Manifest {
            format_version: 1,
            model_kind: "spatial-mllm-v1.1".into(),
            config,
            tokenizer: None,
            tensors: [("a".to_string(), tensor(1000)), ("b".to_string(), tensor(24))].into_iter().collect(),
            shards: vec![crate::weights::manifest::ShardEntry { file: "s".into(), bytes: 2000, sha256: String::new() }],
        };
        let e = estimate_package(&m, 4, 140, 56, 4, false).unwrap();
        assert_eq!(e.weight_bytes, 1024);
        assert!(e.activation_bytes > 0 && e.largest_buffer_bytes >= 1000, "{e:?}");
        // More frames need more.
        let more = estimate_package(&m, 8, 140, 56, 4, false).unwrap();
        assert!(more.activation_bytes > e.activation_bytes);
        // With resize, a large frame is scaled down to the video budget first.
        let big = estimate_package(&m, 16, 1920, 1080, 4, true).unwrap();
        let raw = estimate_package(&m, 16, 1920, 1080, 4, false).unwrap();
        assert!(big.activation_bytes < raw.activation_bytes);
        assert!(estimate_package(&m, 0, 140, 56, 4, false).is_err());
        let mut bad = m.clone();
        bad.model_kind = "llama".into();
        assert!(estimate_package(&bad, 4, 140, 56, 4, false).is_err());
        let mut v = m.clone();
        v.model_kind = "vggt".into();
        v.config = serde_json::json!({});
        let s = estimate_package(&v, 32, 224, 168, 2, false).unwrap();
        assert!(s.largest.contains("VGGT"), "{s:?}");
    }
}
