//! Spatial-MLLM at a real config (random weights from a package): time to first token for a video
//! split into its stages (CPU preprocessing of random frames, ViT, VGGT, connector, prefill),
//! decode tokens/s, peak activation memory and peak GPU memory (weights + activations), and the
//! package's download size.

use super::PEAK_GPU_MEMORY;
use crate::gpu::{clock::now_ms, Gpu};
use crate::model::qwen::generate::GenerationConfig;
use crate::model::qwen::VisionModel;
use crate::model::spatial::{open_session, SpatialMllm, Visual};
use crate::model::vggt::Frames;
use crate::model::{MResult, ModelError};
use crate::preprocess::{prepare_video, RgbFrames, TorchFloat, VitInput};
use crate::rng::Rng;

pub struct SpatialRun {
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    pub vision_tokens: usize,
    pub prompt_tokens: usize,
    /// Source frames resized and normalised for both encoders (CPU, one thread); NaN where the
    /// asked size is below what preprocessing produces.
    pub source: (usize, usize),
    pub preprocess_ms: f64,
    pub vit_ms: f64,
    pub vggt_ms: f64,
    pub connector_ms: f64,
    pub prefill_ms: f64,
    pub decode_tok_s: f64,
    /// The activations' high-water mark over the run (`GpuStats::activation_bytes`).
    pub activation_bytes: u64,
}

/// One video of `frames` random frames of `height` x `width` (multiples of 28), a ~20-token
/// question, `new_tokens` greedy tokens, through the sequence the app and the CLI run
/// (`model::spatial::pipeline`: its context and session); the video is encoded stage by stage,
/// each stage submitted and waited for on its own.
pub async fn run(gpu: &Gpu, m: &SpatialMllm, frames: usize, height: usize, width: usize, new_tokens: usize) -> MResult<SpatialRun> {
    // The VGGT and connector timings need the spatial encoder.
    m.spatial_encoder("bench spatial")?;
    let RandomVideo { vit, pixels: px, source, preprocess_ms } = random_video(m, frames, height, width, 9)?;
    let f = Frames { pixels: &px, count: frames, height, width };
    gpu.clear_pool();
    // Each stage's start ("ViT", "VGGT", "connector"); the last ends with the encoding.
    let mut starts: Vec<f64> = Vec::new();
    let t0 = now_ms();
    let opened = open_session(gpu, m, Visual::Video { vit: &vit, vggt: f }, new_tokens, Some(&mut |_: &str| starts.push(now_ms()))).await?;
    let end = t0 + opened.encode_ms;
    let [vit_ms, vggt_ms, connector_ms] = match starts[..] {
        [a, b, c] => [b - a, c - b, end - c],
        _ => return Err(ModelError::Config(format!("the encoding reported {} stages, not ViT, VGGT and connector", starts.len()))),
    };
    let mut session = opened.session;

    // The prompt: the chat template's tokens around the video block, with a question's worth of text.
    let n_vis = session.visual_tokens();
    let prompt = session.synthetic_prompt(m)?;
    let prompt_tokens = prompt.ids.len();
    let g = session.ask_prompt(gpu, m, prompt, &GenerationConfig::greedy(new_tokens, vec![]), &mut |_| true).await?;
    let decoded = g.tokens.len().saturating_sub(1);
    Ok(SpatialRun {
        frames,
        height,
        width,
        vision_tokens: n_vis,
        prompt_tokens,
        source,
        preprocess_ms,
        vit_ms,
        vggt_ms,
        connector_ms,
        prefill_ms: g.prefill_ms,
        decode_tok_s: if decoded > 0 { decoded as f64 / g.decode_ms * 1e3 } else { f64::NAN },
        activation_bytes: gpu.stats.activation_bytes(),
    })
}

/// A video's inputs to both encoders, made from random frames as `eval` makes them from decoded ones.
pub struct RandomVideo {
    pub vit: VitInput,
    /// VGGT's frames [frames, 3, height, width] in [0, 1].
    pub pixels: Vec<f32>,
    /// The random source frames' size (width, height).
    pub source: (usize, usize),
    /// CPU preprocessing (resize and normalise for both encoders, one thread); NaN when the asked
    /// size is below what preprocessing produces and the inputs are random values instead.
    pub preprocess_ms: f64,
}

/// What [`random_video`] takes: an even, non-zero frame count and sides that are non-zero
/// multiples of the ViT's merged patch (28 px).
pub fn check_video_size(m: &SpatialMllm, frames: usize, height: usize, width: usize) -> MResult<()> {
    let unit = m.cfg.vision.patch * m.cfg.vision.merge;
    if frames == 0 || frames % 2 != 0 || height % unit != 0 || width % unit != 0 || height == 0 || width == 0 {
        return Err(ModelError::Input(format!("{frames} frames of {width}x{height}: an even frame count and sides that are multiples of {unit} are needed")));
    }
    Ok(())
}

/// `frames` random frames (seeded by `seed`) for encoders of `height` x `width` (multiples of 28,
/// an even frame count): frames of the size that qwen-vl-utils resizes to this one (ScanNet's
/// 640x480 for 644x476, spec §2.1, else the size itself) preprocessed as `eval` does. Below the
/// video pixel budget's minimum (the small sizes for CPU adapters) preprocessing scales frames
/// up, so those runs feed the encoders random inputs of the asked size instead.
pub fn random_video(m: &SpatialMllm, frames: usize, height: usize, width: usize, seed: u64) -> MResult<RandomVideo> {
    let input = |e: &dyn std::fmt::Display| ModelError::Input(e.to_string());
    check_video_size(m, frames, height, width)?;
    let c = &m.cfg.vision;
    let source = if (width, height) == (644, 476) { (640, 480) } else { (width, height) };
    let mut rng = Rng::new(seed);
    let bytes: Vec<u8> = (0..frames * source.0 * source.1 * 3).map(|_| rng.below(256) as u8).collect();
    let raw = RgbFrames::new(frames, source.1, source.0, bytes).map_err(|e| input(&e))?;
    let t0 = now_ms();
    let prepared = prepare_video(&raw, TorchFloat::Fma).map_err(|e| input(&e))?;
    let preprocess_ms = now_ms() - t0;
    if (prepared.frames.width, prepared.frames.height) == (width, height) {
        return Ok(RandomVideo { vit: prepared.vit, pixels: prepared.vggt.pixels, source, preprocess_ms });
    }
    let grid_thw = [frames / 2, height / c.patch, width / c.patch];
    let rows = grid_thw.iter().product::<usize>() * VisionModel::patch_dim(c);
    let vit = VitInput { pixel_values: (0..rows).map(|_| rng.uniform(-1.8, 2.1)).collect(), grid_thw };
    let pixels = (0..frames * 3 * height * width).map(|_| rng.unit() as f32).collect();
    Ok(RandomVideo { vit, pixels, source, preprocess_ms: f64::NAN })
}

pub fn format_table(gpu: &Gpu, package_bytes: u64, weights: &str, runs: &[SpatialRun]) -> String {
    let mut s = format!("device: {}\npath: {:?} activations\npackage: {:.2} GB download ({weights})\n", gpu.info, gpu.act, package_bytes as f64 / 1e9);
    s += &crate::bench::gemm_line(gpu);
    s += "\n";
    s += &format!("| frames | size | vision tokens | prompt | preprocessing ms | ViT ms | VGGT ms | connector ms | prefill ms | time to first token ms | decode tok/s | peak activations GB | {PEAK_GPU_MEMORY} |\n");
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in runs {
        let ttft = r.preprocess_ms.max(0.0) + r.vit_ms + r.vggt_ms + r.connector_ms + r.prefill_ms;
        s += &format!(
            "| {} | {}x{} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |\n",
            r.frames,
            r.width,
            r.height,
            r.vision_tokens,
            r.prompt_tokens,
            if r.preprocess_ms.is_finite() { format!("{:.0}", r.preprocess_ms) } else { "n/a".into() },
            r.vit_ms,
            r.vggt_ms,
            r.connector_ms,
            r.prefill_ms,
            ttft,
            r.decode_tok_s,
            r.activation_bytes as f64 / 1e9,
            (package_bytes + r.activation_bytes) as f64 / 1e9
        );
    }
    if let Some(r) = runs.iter().find(|r| r.preprocess_ms.is_finite()) {
        s += &format!(
            "\n(preprocessing: {} random {}x{} frames resized to {}x{} and normalised for both encoders on the CPU, one thread; \
             decoding the video is not included — the app decodes with WebCodecs and preprocesses as frames arrive)\n",
            r.frames, r.source.0, r.source.1, r.width, r.height
        );
    }
    s
}
