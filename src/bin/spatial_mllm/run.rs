//! `run`: answer a question about a video, frames or images (or a text-only one), streaming the
//! reply or printing one JSON object.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use spatial_mllm_web::model::qwen::generate::{GenerationConfig, SamplingConfig};
use spatial_mllm_web::model::spatial::frame_sampler::SamplerConfig;
use spatial_mllm_web::native::answer::{answer, check_frames, load_model, load_vggt, FrameChoice, Source};
use spatial_mllm_web::native::error::NativeError;

use crate::{gpu, hub_model, OrExit};

#[derive(Args)]
pub struct RunArgs {
    /// The Spatial-MLLM model package (from `convert`), or a Hugging Face repository
    /// ORG/NAME[@REVISION] (downloaded and converted once into the package cache).
    #[arg(long)]
    model: String,
    /// A video file, a folder of .png / .jpg frames, or several .png / .jpg images (in order);
    /// none for a text-only question.
    #[arg(num_args = 0..)]
    input: Vec<PathBuf>,
    /// The question.
    #[arg(long, short)]
    question: String,
    /// Frames to use (even; 16 as the paper).
    #[arg(long, default_value_t = 16)]
    frames: usize,
    /// uniform, space-aware (128 candidates at 518 px) or fast (32 candidates at 224 px).
    #[arg(long, value_enum, default_value_t = SamplingArg::Uniform)]
    sampling: SamplingArg,
    /// The VGGT-1B package (with its point head) for space-aware sampling, or a Hugging Face
    /// repository (e.g. facebook/VGGT-1B).
    #[arg(long)]
    vggt: Option<String>,
    /// Most new tokens.
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// Sampling temperature (0 = greedy, the evaluation setting).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object (answer, frames, timings) instead of streaming text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SamplingArg {
    Uniform,
    SpaceAware,
    Fast,
}

pub fn run(f32_only: bool, args: RunArgs) {
    let RunArgs { model, input, question, frames, sampling, vggt, max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed, json } = args;
    // No input: a text-only question (no visual block in the prompt).
    let source = (!input.is_empty()).then(|| Source::from_paths(&input).or_exit());
    if source.is_some() {
        check_frames(frames).or_exit(); // before the model is loaded
    }
    if source.is_none() && sampling != SamplingArg::Uniform {
        Err::<(), _>(NativeError::Arguments("space-aware sampling needs an input video".into())).or_exit();
    }
    let gpu = gpu(f32_only);
    let (m, tok) = load_model(&gpu, &hub_model(&model)).or_exit();
    let choice = match sampling {
        SamplingArg::Uniform => FrameChoice::Uniform,
        mode => {
            let dir = vggt.ok_or_else(|| NativeError::Arguments("space-aware sampling needs --vggt PACKAGE (VGGT-1B with its point head)".into())).or_exit();
            let v = load_vggt(&gpu, &hub_model(&dir)).or_exit();
            let cfg = if mode == SamplingArg::Fast { SamplerConfig::fast() } else { SamplerConfig::full() };
            FrameChoice::SpaceAware { vggt: Box::new(v), cfg }
        }
    };
    let gen = GenerationConfig {
        max_new_tokens,
        sampling: (temperature > 0.0).then_some(SamplingConfig { temperature, top_p, top_k }),
        repetition_penalty,
        stop: m.cfg.tokens.eos.clone(),
        seed,
    };
    let mut out = std::io::stdout();
    let mut print = |piece: &str| {
        if !json {
            let _ = out.write_all(piece.as_bytes());
            let _ = out.flush();
        }
    };
    let a = answer(&gpu, &m, &tok, source.as_ref(), &question, frames, &choice, &gen, &mut print).or_exit();
    if json {
        let j = serde_json::json!({
            "model_kind": m.kind.id(), "spatial_encoder": m.has_spatial_encoder(), "input": a.input,
            "question": question, "answer": a.text, "tokens": a.tokens.len(), "stop": format!("{:?}", a.stop),
            "frames": a.frames, "frame_size": [a.frame_size.0, a.frame_size.1],
            "ms": {"preprocess": a.preprocess_ms, "encode": a.encode_ms, "prefill": a.prefill_ms, "decode": a.decode_ms},
        });
        println!("{j}");
    } else {
        println!();
    }
}
