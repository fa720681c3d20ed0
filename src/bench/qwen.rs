//! Qwen2.5-VL language model at a real config (random weights from a package): prefill and decode
//! tokens/s, dispatches and submits per decoded token, bytes read per decoded token, and the
//! fractions of the same device's measured copy bandwidth and best GEMM rate reached.

use super::{bandwidth, gemm_row, BenchError, Row};
use crate::gpu::{Gpu, Recorder, StatsSnapshot};
use crate::model::qwen::generate::{generate, GenerationConfig, Generated, Prompt};
use crate::model::qwen::{DecodeKernels, DecodePlan, KvCache, QwenConfig, TextModel};
use crate::model::Params;
use crate::rng::Rng;
use crate::weights::manifest::Manifest;
use crate::weights::loader::GpuParam;
use crate::weights::WeightFormat;

pub struct QwenBench {
    /// Prompt tokens (random ids, text positions).
    pub prompt: usize,
    /// New tokens decoded greedily after the prompt.
    pub new_tokens: usize,
    pub reps: usize,
    /// Decode with the fused kernels (true), the separate ones (false), or each in turn.
    pub decode_modes: Vec<DecodeKernels>,
}

pub struct QwenReport {
    pub label: String,
    pub prompt: usize,
    pub new_tokens: usize,
    pub prefill_ms: f64,
    pub prefill_flops: f64,
    pub decode_ms_per_token: f64,
    pub per_token: StatsSnapshot,
    /// Bind groups created per decoded token (the rest came from the cache).
    pub bind_groups_per_token: f64,
    pub decoded: usize,
    /// Weights read per decoded token (every layer matrix and the tied embedding as lm_head).
    pub weight_bytes: f64,
    /// KV cache read per decoded token, at the mean context length of the decode.
    pub kv_bytes: f64,
    /// Weights read more than once per decoded token: the folded decode's W_q, once per extra
    /// key range (`kernels::fold::fold_ranges`), averaged over the decode.
    pub reread_bytes: f64,
    pub copy: Row,
    pub gemm: Row,
    /// Weights plus the activations' high-water mark (KV cache included).
    pub peak_gpu_bytes: u64,
}

/// Bytes of the language model's tensors as stored (packed on the GPU as in the package).
fn llm_bytes(m: &Manifest) -> f64 {
    m.tensors.iter().filter(|(n, _)| n.starts_with("llm.")).flat_map(|(_, t)| &t.parts).map(|p| p.bytes as f64).sum()
}

/// How the language model's matrices are stored, e.g. "q4 layers, q8 embedding".
pub fn formats(m: &Manifest) -> String {
    let of = |name: &str| m.tensors.get(name).map(|t| t.format.name()).unwrap_or("?");
    format!("{} layers, {} embedding / lm_head", of("llm.layers.0.mlp.up_proj.weight"), of("llm.embed_tokens.weight"))
}

/// Prefill `ids` and decode `tokens` greedily. Also returns the device counters over the decode
/// steps between the first token and the second to last, and how many steps that is: whether
/// steps are pipelined (recorded before the token they feed is read) or not, exactly one step is
/// recorded between reading one token and the next, except before the last.
async fn one_run(
    gpu: &Gpu,
    model: &TextModel,
    ids: &[u32],
    positions: &[[i32; 3]],
    cache: &mut KvCache,
    tokens: usize,
) -> Result<(Generated, StatsSnapshot, u64), BenchError> {
    let mut rec = Recorder::new(gpu);
    let embeds = model.embed(&mut rec, &gpu.upload_u32(ids, &[ids.len()])?)?;
    rec.submit()?;
    let mut at_token = Vec::new();
    let mut on_token = |_| {
        at_token.push(gpu.stats.snapshot());
        true
    };
    let prompt = Prompt { embeds, positions: positions.to_vec(), delta: 0 };
    let g = generate(gpu, model, cache, prompt, &GenerationConfig::greedy(tokens, vec![]), &mut on_token).await?;
    let steps = at_token.len().saturating_sub(2);
    let counted = if steps > 0 { at_token[steps] - at_token[0] } else { StatsSnapshot::default() };
    Ok((g, counted, steps as u64))
}

/// One report per decode mode of `b` (folded, fused or separate kernels), on one loaded model.
pub async fn run(gpu: &Gpu, m: &Manifest, params: std::collections::HashMap<String, GpuParam>, b: &QwenBench) -> Result<Vec<QwenReport>, BenchError> {
    let cfg = QwenConfig::from_json(&m.config)?.text;
    let mut model = TextModel::new(gpu, &cfg, &Params::new(params))?;
    let mut out = Vec::new();
    for &kernels in &b.decode_modes {
        model.decode = DecodePlan::all(kernels);
        out.push(run_mode(gpu, m, &model, b).await?);
    }
    Ok(out)
}

async fn run_mode(gpu: &Gpu, m: &Manifest, model: &TextModel, b: &QwenBench) -> Result<QwenReport, BenchError> {
    let cfg = &model.cfg;
    let mut rng = Rng::new(11);
    let ids: Vec<u32> = (0..b.prompt).map(|_| rng.below(cfg.vocab) as u32).collect();
    let positions: Vec<[i32; 3]> = (0..b.prompt as i32).map(|i| [i; 3]).collect();

    gpu.clear_pool();
    // A short warm-up run compiles every pipeline and fills the buffer pool.
    let mut cache = KvCache::new(gpu, cfg, b.prompt + b.new_tokens)?;
    one_run(gpu, model, &ids, &positions, &mut cache, 2).await?;
    let mut prefill_ms = f64::INFINITY;
    let mut decode_ms = f64::INFINITY;
    let mut per_token = StatsSnapshot::default();
    let mut bind_groups_per_token = 0.0;
    let mut decoded = 0;
    for _ in 0..b.reps.max(1) {
        cache.len = 0;
        let (g, d, steps) = one_run(gpu, model, &ids, &positions, &mut cache, b.new_tokens).await?;
        prefill_ms = prefill_ms.min(g.prefill_ms);
        decoded = g.tokens.len().saturating_sub(1);
        if decoded > 0 {
            decode_ms = decode_ms.min(g.decode_ms / decoded as f64);
        }
        if let Some(n) = std::num::NonZeroU64::new(steps) {
            per_token = StatsSnapshot { submits: d.submits / n, dispatches: d.dispatches / n, bind_groups: d.bind_groups / n, encode_us: d.encode_us / n };
            bind_groups_per_token = d.bind_groups as f64 / steps as f64;
        }
    }

    let matrices: f64 = (cfg.layers * (2 * cfg.hidden * cfg.q_dim() + 2 * cfg.hidden * cfg.kv_dim() + 3 * cfg.hidden * cfg.intermediate)) as f64;
    let attention = (cfg.layers * cfg.heads * cfg.head_dim) as f64 * 2.0 * (b.prompt * b.prompt) as f64; // causal: half of 4·n²·d
    let prefill_flops = 2.0 * matrices * b.prompt as f64 + attention + 2.0 * (cfg.vocab * cfg.hidden) as f64;
    let mean_ctx = b.prompt as f64 + b.new_tokens as f64 / 2.0;
    let kv_bytes = (cfg.layers * 2 * cfg.kv_dim()) as f64 * mean_ctx * gpu.act.size() as f64;
    let reread_bytes = match model.decode.short {
        DecodeKernels::Folded if decoded > 0 => {
            let wq: f64 = m.tensors.get("llm.layers.0.self_attn.q_proj.weight").map_or(0.0, |t| t.parts.iter().map(|p| p.bytes as f64).sum());
            let extra: usize = (0..decoded).map(|s| crate::kernels::fold::fold_ranges(b.prompt + s) - 1).sum();
            wq * cfg.layers as f64 * extra as f64 / decoded as f64
        }
        _ => 0.0,
    };

    let peak_gpu_bytes = super::peak_gpu_bytes(gpu, m.total_bytes());
    drop(cache);
    let copy = bandwidth::copy_floor_row(gpu, bandwidth::probe_bytes(gpu, crate::testing::Scale::Small), 5)?;
    let fmt = m.tensors.get("llm.layers.0.mlp.up_proj.weight").map(|t| t.format).unwrap_or(WeightFormat::Q4);
    let gemm = gemm_row(gpu, &mut rng, fmt, b.prompt, cfg.intermediate, cfg.hidden, 3)?;
    Ok(QwenReport {
        label: format!("{}, {} decode", formats(m), model.decode.short.name()),
        prompt: b.prompt,
        new_tokens: b.new_tokens,
        prefill_ms,
        prefill_flops,
        decode_ms_per_token: decode_ms,
        per_token,
        bind_groups_per_token,
        decoded,
        weight_bytes: llm_bytes(m),
        kv_bytes,
        reread_bytes,
        copy,
        gemm,
        peak_gpu_bytes,
    })
}

/// The table of one or more runs.
pub fn format_table(gpu: &Gpu, runs: &[QwenReport]) -> String {
    let mut s = format!("device: {}\npath: {:?} activations\n", gpu.info, gpu.act);
    s += &crate::bench::gemm_line(gpu);
    s += "\n";
    s += &format!("| weights | prompt | prefill tok/s | prefill GFLOP/s | % of GEMM floor | decode tok/s | ms/token | dispatches/token | submits/token | bind groups created/token | CPU encode ms/token | MB read/token | GB/s | % of copy floor | {} |\n", super::PEAK_GPU_MEMORY);
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in runs {
        let prefill_gflops = r.prefill_flops / r.prefill_ms / 1e6;
        let bytes = r.weight_bytes + r.kv_bytes + r.reread_bytes;
        let gbps = bytes / r.decode_ms_per_token / 1e6;
        s += &format!(
            "| {} | {} | {:.1} | {:.1} | {:.0}% | {:.2} | {:.1} | {} | {} | {:.1} | {:.2} | {:.0} | {:.1} | {:.0}% | {:.2} |\n",
            r.label,
            r.prompt,
            r.prompt as f64 / r.prefill_ms * 1e3,
            prefill_gflops,
            100.0 * prefill_gflops / r.gemm.gflops(),
            1e3 / r.decode_ms_per_token,
            r.decode_ms_per_token,
            r.per_token.dispatches,
            r.per_token.submits,
            r.bind_groups_per_token,
            r.per_token.encode_us as f64 / 1e3,
            bytes / 1e6,
            gbps,
            100.0 * gbps / r.copy.gbps(),
            r.peak_gpu_bytes as f64 / 1e9,
        );
    }
    s += "\nfloors measured in the same run: ";
    let floors: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{}: copy {:.1} GB/s ({}; {}), {} {:.1} GFLOP/s",
                r.label,
                r.copy.gbps(),
                r.copy.name,
                bandwidth::versus_published(&gpu.info.name, r.copy.gbps()),
                r.gemm.name,
                r.gemm.gflops()
            )
        })
        .collect();
    s += &floors.join("; ");
    s += &format!("\n(decode: {} tokens after the prompt, best of the repetitions; prefill includes the first token's logits and readback; CPU encode: recording the step's uniforms, bind groups and passes, which the GPU waits for; bind groups are cached across steps)\n", runs.first().map_or(0, |r| r.decoded));
    s
}
