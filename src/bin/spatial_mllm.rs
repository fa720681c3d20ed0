//! The native command line: device information, model conversion, benchmarks.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use spatial_mllm_web::bench::qwen::{self as qwen_bench, QwenBench};
use spatial_mllm_web::bench::spatial as spatial_bench;
use spatial_mllm_web::bench::vggt as vggt_bench;
use spatial_mllm_web::model::spatial::SpatialMllm;
use spatial_mllm_web::model::vggt::Aggregator;
use spatial_mllm_web::model::Params;
use spatial_mllm_web::weights::shapes::VggtDims;
use spatial_mllm_web::bench::{format_table, run_all, Scale};
use spatial_mllm_web::gpu::{Gpu, GpuOptions};
use spatial_mllm_web::testing::Rng;
use spatial_mllm_web::weights::convert::{convert, write_random, ConvertOptions, Progress};
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;
use spatial_mllm_web::weights::quant::roundtrip_error;
use spatial_mllm_web::weights::WeightFormat;
use spatial_mllm_web::native::hub::{model_source, resolve_model, HubClient, HubProgress, ModelSource};

#[derive(Parser)]
#[command(name = "spatial-mllm", version, about = "Spatial-MLLM on WebGPU (native)")]
struct Cli {
    /// Use f32 activations even where the adapter has shader-f16.
    #[arg(long, global = true)]
    f32: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Answer a question about a video file (decoded with the system's ffmpeg), a folder of
    /// frames, or image files, streaming the reply; with no input, a text-only question. The model
    /// is a Spatial-MLLM package or a plain Qwen2.5-VL one (no spatial encoder; one image is then
    /// encoded as Qwen2.5-VL's image).
    Run {
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
    },
    /// Evaluate on a VSI-Bench annotation file (JSON or JSON lines) with the reference prompts:
    /// multiple choice by normalised exact match, numbers by Mean Relative Accuracy; per-task, micro
    /// and macro averages. One result line per sample is appended to RESULTS; a rerun resumes.
    Eval {
        /// The Spatial-MLLM model package, or a Hugging Face repository ORG/NAME[@REVISION].
        #[arg(long)]
        model: String,
        /// The annotation file.
        #[arg(long)]
        annotations: PathBuf,
        /// The folder the annotations' video paths are relative to ({dataset}/{scene}.mp4, or a
        /// folder of frames {dataset}/{scene}/).
        #[arg(long)]
        videos: PathBuf,
        /// The results file (JSON lines).
        #[arg(long)]
        results: PathBuf,
        /// Frames per video.
        #[arg(long, default_value_t = 16)]
        frames: usize,
        /// Most new tokens per answer (default: 1024 for VSI-Bench, 256 for ScanQA / SQA3D, as the reference).
        #[arg(long)]
        max_new_tokens: Option<usize>,
        /// vsi (VSI-Bench), scanqa or sqa3d (LLaVA-style conversations; exact-match scores).
        #[arg(long, value_enum, default_value_t = BenchmarkArg::Vsi)]
        benchmark: BenchmarkArg,
        /// Prompts of the v1.0 evaluator instead of v1.1's.
        #[arg(long)]
        v10_prompts: bool,
        /// Evaluate only the first N samples.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Space-aware frame sampling of a video with a VGGT package: the frames the full mode (128
    /// candidates at 518 px) and the fast mode (32 at 224 px) pick, and how far they agree.
    Sample {
        /// The VGGT package (VGGT-1B with its point head), or a Hugging Face repository.
        #[arg(long)]
        vggt: String,
        /// The video file.
        video: PathBuf,
        /// Frames to pick.
        #[arg(long, default_value_t = 16)]
        k: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show the adapter and the negotiated limits and features.
    Info,
    /// Convert a Hugging Face checkpoint directory (Spatial-MLLM v1.0 / v1.1, Qwen2.5-VL, VGGT-1B)
    /// into a model package, or write a package of random weights with --random.
    Convert {
        /// The checkpoint directory (safetensors + config.json), a Hugging Face repository
        /// ORG/NAME[@REVISION] (downloaded with resume into the Hugging Face cache, HF_TOKEN for
        /// private or gated ones), or with --random a config.json.
        src: String,
        /// The package directory to write.
        dst: PathBuf,
        /// Write random weights at the config SRC instead of converting.
        #[arg(long)]
        random: bool,
        /// Model kind for --random: spatial-mllm-v1.0, spatial-mllm-v1.1, qwen2.5-vl, vggt.
        #[arg(long, default_value = "spatial-mllm-v1.1")]
        kind: String,
        /// Format overrides, PREFIX=FORMAT separated by commas (f32, f16, q8, q4), e.g. "llm.=q8".
        #[arg(long, default_value = "")]
        policy: String,
        /// Largest shard in KiB (131072 = 128 MiB binds on every WebGPU adapter).
        #[arg(long, default_value_t = 131072)]
        shard_kib: u64,
    },
    /// Verify a package's shards (sizes and SHA-256).
    Verify { dir: PathBuf },
    /// Round-trip error of each weight format on weights drawn like trained ones.
    QuantError,
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Every kernel family at model-like sizes, against the device's copy bandwidth and GEMM rate.
    Kernels {
        /// Problem sizes: `small` for CPU adapters, `full` for the model's real sizes.
        #[arg(long, value_enum, default_value_t = SizeArg::Auto)]
        size: SizeArg,
        /// Repetitions per measurement.
        #[arg(long, default_value_t = 10)]
        reps: usize,
    },
    /// The Qwen2.5-VL language model at a real config with random weights (q4 and q8 layers):
    /// prefill and decode tokens/s, dispatches and submits per token, bytes per token against the
    /// device's bandwidth. Random packages are written once under target/bench-packages.
    Qwen {
        /// The model config (default: Qwen2.5-VL-3B's).
        #[arg(long, default_value = "models/configs/qwen2.5-vl-3b.json")]
        config: PathBuf,
        /// Benchmark this package instead of random weights.
        #[arg(long)]
        package: Option<PathBuf>,
        /// Formats of the decoder layers' matrices, comma-separated (q4: the default policy, q8
        /// embedding; q8: everything q8).
        #[arg(long, default_value = "q4,q8")]
        formats: String,
        /// Prompt tokens.
        #[arg(long, default_value_t = 128)]
        prompt: usize,
        /// Decoded tokens.
        #[arg(long, default_value_t = 32)]
        tokens: usize,
        /// Repetitions (the best is reported).
        #[arg(long, default_value_t = 2)]
        reps: usize,
    },
    /// Spatial-MLLM v1.1 at its real config with random weights (default policy: q4 language model
    /// and connector, q8 encoders): time to first token split into ViT, VGGT, connector and prefill;
    /// decode tokens/s; peak activation memory; the package's download size.
    Spatial {
        /// The model config (default: Spatial-MLLM v1.1 = Qwen2.5-VL-3B + VGGT-1B).
        #[arg(long, default_value = "models/configs/spatial-mllm-v1.1.json")]
        config: PathBuf,
        /// Benchmark this package instead of random weights.
        #[arg(long)]
        package: Option<PathBuf>,
        /// Frames (even; default 16 on a GPU, 2 on a CPU adapter).
        #[arg(long)]
        frames: Option<usize>,
        /// Frame size WIDTHxHEIGHT, multiples of 28 (default 644x476 on a GPU, 56x56 on a CPU adapter).
        #[arg(long)]
        size: Option<String>,
        /// Decoded tokens.
        #[arg(long, default_value_t = 16)]
        tokens: usize,
    },
    /// VGGT's aggregator at a real config with random weights: time per frame count, FLOP rate
    /// against the device's GEMM rate, peak activation memory.
    Vggt {
        /// The model config (default: VGGT-1B's).
        #[arg(long, default_value = "models/configs/vggt-1b.json")]
        config: PathBuf,
        /// Benchmark this package instead of random weights.
        #[arg(long)]
        package: Option<PathBuf>,
        /// Frame counts, comma-separated (default: 8,16,32 on a GPU, 1,2 on a CPU adapter).
        #[arg(long)]
        frames: Option<String>,
        /// Frame size WIDTHxHEIGHT, multiples of 14 (default: 518x392 on a GPU, 224x168 on a CPU adapter).
        #[arg(long)]
        size: Option<String>,
        /// Repetitions (the best is reported).
        #[arg(long, default_value_t = 1)]
        reps: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchmarkArg {
    Vsi,
    Scanqa,
    Sqa3d,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SamplingArg {
    Uniform,
    SpaceAware,
    Fast,
}

#[derive(Clone, Copy, ValueEnum)]
enum SizeArg {
    /// `small` on a CPU adapter, `full` on a GPU.
    Auto,
    Small,
    Full,
}

/// Exit codes: 0 ok, 1 bad input (checkpoint, package, arguments), 2 no adapter / device error,
/// 3 benchmark failure.
fn fail(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(code)
}

fn gpu(f32_only: bool) -> Gpu {
    pollster::block_on(Gpu::new(GpuOptions { allow_f16: !f32_only, ..Default::default() })).unwrap_or_else(|e| fail(2, e))
}

/// A --model / --vggt argument as a package directory: a local path as it is, or a Hugging Face
/// repository ORG/NAME[@REVISION] downloaded and converted once into the package cache.
fn hub_model(arg: &str) -> PathBuf {
    let mut hb = HubBar::new();
    resolve_model(arg, &mut |e| hb.update(e)).unwrap_or_else(|e| fail(1, e))
}

/// Progress of hub downloads (bytes, rate, time left) and of the conversion that follows.
struct HubBar {
    bar: ProgressBar,
    converting: bool,
}

impl HubBar {
    fn new() -> Self {
        HubBar { bar: ProgressBar::hidden(), converting: false }
    }
    fn update(&mut self, e: HubProgress) {
        match e {
            HubProgress::Message(m) => self.bar.suspend(|| eprintln!("{m}")),
            HubProgress::Plan { files, bytes } => {
                self.bar.finish_and_clear();
                self.bar = ProgressBar::new(bytes);
                self.bar.set_style(
                    ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}").unwrap(),
                );
                self.bar.set_message(format!("({files} files)"));
                self.converting = false;
            }
            HubProgress::Bytes { file, done, total } => {
                self.bar.set_length(total);
                self.bar.set_position(done);
                self.bar.set_message(file.to_string());
            }
            HubProgress::Retry { url, attempt, wait, why } => {
                self.bar.suspend(|| eprintln!("{url}: {why}; retry {attempt} in {:.1} s", wait.as_secs_f64()))
            }
            HubProgress::Convert { done, total, name } => {
                if !self.converting {
                    self.bar.finish_and_clear();
                    self.bar = bar();
                    self.converting = true;
                }
                self.bar.set_length(total as u64);
                self.bar.set_position(done as u64);
                self.bar.set_message(name.to_string());
            }
        }
    }
}

impl Drop for HubBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn bar() -> ProgressBar {
    let b = ProgressBar::new(0);
    b.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} tensors {elapsed} {msg}").unwrap());
    b
}

fn main() {
    env_logger::init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Info => println!("{}", gpu(cli.f32).info),
        Cmd::Sample { vggt, video, k, json } => {
            use spatial_mllm_web::model::spatial::frame_sampler::{candidate_indices, sample_frames, SamplerConfig};
            use spatial_mllm_web::native::answer::load_vggt;
            use spatial_mllm_web::native::video::{decode_frames, probe};
            let gpu = gpu(cli.f32);
            let v = load_vggt(&gpu, &hub_model(&vggt)).unwrap_or_else(|e| fail(1, e));
            let info = probe(&video).unwrap_or_else(|e| fail(1, e));
            let mut picks = Vec::new();
            for (name, cfg) in [("full", SamplerConfig::full()), ("fast", SamplerConfig::fast())] {
                let cfg = SamplerConfig { k, ..cfg };
                let t0 = std::time::Instant::now();
                let cands = candidate_indices(info.frames, &cfg).unwrap_or_else(|e| fail(1, e));
                let frames = decode_frames(&video, &info, &cands).unwrap_or_else(|e| fail(1, e));
                let picked = pollster::block_on(sample_frames(&gpu, &v, &frames, &cands, &cfg)).unwrap_or_else(|e| fail(1, e));
                picks.push((name, picked, cands.len(), cfg.width, t0.elapsed().as_secs_f64()));
            }
            let shared = picks[0].1.iter().filter(|f| picks[1].1.contains(f)).count();
            let agreement = shared as f64 / picks[0].1.len().max(1) as f64;
            if json {
                let modes: Vec<_> = picks.iter().map(|(n, p, c, w, s)| serde_json::json!({"mode": n, "frames": p, "candidates": c, "width": w, "seconds": s})).collect();
                println!("{}", serde_json::json!({"video": video, "total_frames": info.frames, "modes": modes, "agreement": agreement}));
            } else {
                for (n, p, c, w, s) in &picks {
                    println!("{n}: {p:?} ({c} candidates at {w} px, {s:.1} s)");
                }
                println!("agreement: {shared} of {} frames ({:.0} %)", picks[0].1.len(), 100.0 * agreement);
            }
        }
        Cmd::Eval { model, annotations, videos, results, frames, max_new_tokens, benchmark, v10_prompts, limit } => {
            use spatial_mllm_web::eval::annotations::{load_qa_annotations, load_vsi_annotations};
            use spatial_mllm_web::eval::prompt::PromptStyle;
            use spatial_mllm_web::eval::{evaluate_qa, evaluate_with, QaBenchmark};
            use spatial_mllm_web::model::qwen::generate::GenerationConfig;
            use spatial_mllm_web::native::answer::{encode, load_model, EncodedVideo, FrameChoice, Source};
            let max_new_tokens = max_new_tokens.unwrap_or(if benchmark == BenchmarkArg::Vsi { 1024 } else { 256 });
            let report_bad = |errors: &[spatial_mllm_web::eval::AnnotationError]| {
                for e in errors {
                    eprintln!("{}: {e} (skipped)", annotations.display());
                }
            };
            let read_err = |e: std::io::Error| -> ! { fail(1, format!("{}: {e}", annotations.display())) };
            let gpu = gpu(cli.f32);
            let (m, tok) = load_model(&gpu, &hub_model(&model)).unwrap_or_else(|e| fail(1, e));
            // Greedy, stopping at the end-of-turn tokens: the reference's do_sample with top_p 0.001.
            let gen = GenerationConfig::greedy(max_new_tokens, m.cfg.tokens.eos.clone());
            let bar = ProgressBar::new(0);
            bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} samples {elapsed} eta {eta}").unwrap());
            // Questions come grouped by scene: the last video stays encoded.
            let mut current: Option<(String, EncodedVideo)> = None;
            let mut answer_video = |rel: &str, prompt: &str| -> Result<String, String> {
                bar.inc(1);
                if current.as_ref().map(|(p, _)| p != rel).unwrap_or(true) {
                    let mut path = videos.join(rel);
                    if !path.exists() {
                        path = path.with_extension(""); // the folder-of-frames layout
                    }
                    let source = Source::from_path(&path)?;
                    current = Some((rel.to_string(), encode(&gpu, &m, &source, frames, &FrameChoice::Uniform, max_new_tokens)?));
                }
                let (_, v) = current.as_mut().expect("encoded above");
                Ok(v.ask(&gpu, &m, &tok, prompt, &gen, &mut |_| {})?.text)
            };
            let results_fail = |e: std::io::Error| -> ! { fail(1, format!("{}: {e}", results.display())) };
            let (evaluated, resumed, failures, results_errors, table) = if benchmark == BenchmarkArg::Vsi {
                let parsed = load_vsi_annotations(&annotations).unwrap_or_else(|e| read_err(e));
                report_bad(&parsed.errors);
                let mut samples = parsed.items;
                samples.truncate(limit.unwrap_or(usize::MAX));
                bar.set_length(samples.len() as u64);
                let style = if v10_prompts { PromptStyle::V1_0 } else { PromptStyle::V1_1 };
                let s = evaluate_with(&samples, style, |s, prompt| answer_video(&s.video_path(), prompt), &results).unwrap_or_else(|e| results_fail(e));
                (s.evaluated, s.resumed, s.failures, s.results_errors, s.metrics.table())
            } else {
                let which = if benchmark == BenchmarkArg::Scanqa { QaBenchmark::ScanQa } else { QaBenchmark::Sqa3d };
                let parsed = load_qa_annotations(&annotations, Some(which)).unwrap_or_else(|e| read_err(e));
                report_bad(&parsed.errors);
                let mut samples = parsed.items;
                samples.truncate(limit.unwrap_or(usize::MAX));
                bar.set_length(samples.len() as u64);
                let s = evaluate_qa(&samples, |s, prompt| answer_video(&s.video, prompt), &results).unwrap_or_else(|e| results_fail(e));
                (s.evaluated, s.resumed, s.failures, s.results_errors, s.metrics.table())
            };
            bar.finish_and_clear();
            for e in &results_errors {
                eprintln!("{}: {e} (ignored)", results.display());
            }
            for (id, e) in &failures {
                eprintln!("sample {id}: {e} (not scored; a rerun retries it)");
            }
            println!("{evaluated} evaluated, {resumed} resumed from {}, {} failed", results.display(), failures.len());
            print!("{table}");
        }
        Cmd::Run { model, input, question, frames, sampling, vggt, max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed, json } => {
            use spatial_mllm_web::model::qwen::generate::{GenerationConfig, SamplingConfig};
            use spatial_mllm_web::model::spatial::frame_sampler::SamplerConfig;
            use spatial_mllm_web::native::answer::{answer, load_model, load_vggt, FrameChoice, Source};
            use std::io::Write;
            // No input: a text-only question (no visual block in the prompt).
            let source = (!input.is_empty()).then(|| Source::from_paths(&input).unwrap_or_else(|e| fail(1, e)));
            if source.is_none() && sampling != SamplingArg::Uniform {
                fail(1, "space-aware sampling needs an input video");
            }
            let gpu = gpu(cli.f32);
            let (m, tok) = load_model(&gpu, &hub_model(&model)).unwrap_or_else(|e| fail(1, e));
            let choice = match sampling {
                SamplingArg::Uniform => FrameChoice::Uniform,
                mode => {
                    let dir = vggt.unwrap_or_else(|| fail(1, "space-aware sampling needs --vggt PACKAGE (VGGT-1B with its point head)"));
                    let v = load_vggt(&gpu, &hub_model(&dir)).unwrap_or_else(|e| fail(1, e));
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
            let a = answer(&gpu, &m, &tok, source.as_ref(), &question, frames, &choice, &gen, &mut print).unwrap_or_else(|e| fail(1, e));
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
        Cmd::Convert { src, dst, random, kind, policy, shard_kib } => {
            let opts = ConvertOptions { policy: Policy::parse(&policy).unwrap_or_else(|e| fail(1, e)), max_shard: shard_kib << 10 };
            let b = bar();
            let mut progress = |p: Progress| {
                b.set_length(p.total as u64);
                b.set_position(p.done as u64);
                b.set_message(p.name.to_string());
            };
            let result = if random {
                let kind = ModelKind::from_id(&kind).unwrap_or_else(|| fail(1, format!("unknown model kind {kind:?}")));
                let text = std::fs::read_to_string(&src).unwrap_or_else(|e| fail(1, format!("{src}: {e}")));
                let cfg = serde_json::from_str(&text).unwrap_or_else(|e| fail(1, format!("{src}: {e}")));
                write_random(&dst, kind, cfg, &opts, 0x5eed, &mut progress)
            } else {
                match model_source(&src).unwrap_or_else(|e| fail(1, e)) {
                    ModelSource::Local(src) => convert(&src, &dst, &opts, &mut progress),
                    ModelSource::Hub(repo) => {
                        let client = HubClient::from_env();
                        let mut hb = HubBar::new();
                        let snap = client.download(&repo, &mut |e| hb.update(e)).unwrap_or_else(|e| fail(1, e));
                        drop(hb);
                        if snap.package {
                            client.package_into(&snap, &dst, None, &mut |_| {}).unwrap_or_else(|e| fail(1, e));
                            Package::open(&dst).map(|p| p.manifest)
                        } else {
                            convert(&snap.dir, &dst, &opts, &mut progress)
                        }
                    }
                }
            };
            b.finish_and_clear();
            let m = result.unwrap_or_else(|e| fail(1, e));
            println!(
                "wrote {} ({}): {} tensors in {} shards, {:.1} MiB",
                dst.display(),
                m.model_kind,
                m.tensors.len(),
                m.shards.len(),
                m.total_bytes() as f64 / (1 << 20) as f64
            );
        }
        Cmd::Verify { dir } => {
            let p = Package::open(&dir).unwrap_or_else(|e| fail(1, e));
            p.verify().unwrap_or_else(|e| fail(1, e));
            println!("{}: {} shards verified ({} bytes)", dir.display(), p.manifest.shards.len(), p.manifest.total_bytes());
        }
        Cmd::QuantError => quant_error(),
        Cmd::Bench { what: BenchWhat::Qwen { config, package, formats, prompt, tokens, reps } } => {
            let gpu = gpu(cli.f32);
            let dirs = match package {
                Some(p) => vec![p],
                None => formats.split(',').map(|f| random_package(&config, "qwen2.5-vl", f.trim(), qwen_policy(f.trim()))).collect(),
            };
            let bench = QwenBench { prompt, new_tokens: tokens, reps };
            let mut runs = Vec::new();
            for dir in dirs {
                let pkg = Package::open(&dir).unwrap_or_else(|e| fail(1, e));
                eprintln!("loading {} ({:.2} GB)", dir.display(), pkg.manifest.total_bytes() as f64 / 1e9);
                let params = pkg.load(&gpu, &mut |_| {}).unwrap_or_else(|e| fail(1, e));
                eprintln!("running {} ({prompt} prompt tokens, {tokens} new)", qwen_bench::formats(&pkg.manifest));
                runs.push(pollster::block_on(qwen_bench::run(&gpu, &pkg.manifest, params, &bench)).unwrap_or_else(|e| fail(3, e)));
            }
            print!("{}", qwen_bench::format_table(&gpu, &runs));
        }
        Cmd::Bench { what: BenchWhat::Spatial { config, package, frames, size, tokens } } => {
            let gpu = gpu(cli.f32);
            let cpu = gpu.info.device_type == "Cpu";
            let frames = frames.unwrap_or(if cpu { 2 } else { 16 });
            let size = size.unwrap_or_else(|| if cpu { "56x56".into() } else { "644x476".into() });
            let (w, h) = parse_size(&size);
            let dir = package.unwrap_or_else(|| random_package(&config, "spatial-mllm-v1.1", "default", ""));
            let pkg = Package::open(&dir).unwrap_or_else(|e| fail(1, e));
            eprintln!("loading {} ({:.2} GB)", dir.display(), pkg.manifest.total_bytes() as f64 / 1e9);
            let params = Params::new(pkg.load(&gpu, &mut |_| {}).unwrap_or_else(|e| fail(1, e)));
            let m = pollster::block_on(SpatialMllm::new(&gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).unwrap_or_else(|e| fail(1, e));
            // A small warm-up compiles every stage's pipelines, so the timed run measures the
            // steady state (the first video after loading a model also pays for compilation).
            eprintln!("warming up (2 frames of 56x56)");
            pollster::block_on(spatial_bench::run(&gpu, &m, 2, 56, 56, 2)).unwrap_or_else(|e| fail(3, e));
            eprintln!("running {frames} frames of {w}x{h}");
            let run = pollster::block_on(spatial_bench::run(&gpu, &m, frames, h, w, tokens)).unwrap_or_else(|e| fail(3, e));
            let weights = format!("{} language model", qwen_bench::formats(&pkg.manifest));
            print!("{}", spatial_bench::format_table(&gpu, pkg.manifest.total_bytes(), &weights, &[run]));
        }
        Cmd::Bench { what: BenchWhat::Vggt { config, package, frames, size, reps } } => {
            let gpu = gpu(cli.f32);
            let cpu = gpu.info.device_type == "Cpu";
            let frames = frames.unwrap_or_else(|| if cpu { "1,2".into() } else { "8,16,32".into() });
            let frames: Vec<usize> = frames.split(',').map(|f| f.trim().parse().unwrap_or_else(|_| fail(1, format!("bad frame count {f:?}")))).collect();
            let size = size.unwrap_or_else(|| if cpu { "224x168".into() } else { "518x392".into() });
            let (w, h) = parse_size(&size);
            let dir = package.unwrap_or_else(|| random_package(&config, "vggt", "default", ""));
            let pkg = Package::open(&dir).unwrap_or_else(|e| fail(1, e));
            eprintln!("loading {} ({:.2} GB)", dir.display(), pkg.manifest.total_bytes() as f64 / 1e9);
            let params = Params::new(pkg.load(&gpu, &mut |_| {}).unwrap_or_else(|e| fail(1, e)));
            let kind = ModelKind::from_id(&pkg.manifest.model_kind).unwrap_or_else(|| fail(1, "unknown model kind"));
            let dims = VggtDims::from_config(kind, &pkg.manifest.config);
            let agg = pollster::block_on(Aggregator::new(&gpu, dims, &params)).unwrap_or_else(|e| fail(1, e));
            let mut runs = Vec::new();
            for &s in &frames {
                eprintln!("running {s} frames of {w}x{h}");
                runs.push(pollster::block_on(vggt_bench::run(&gpu, &agg, s, h, w, reps)).unwrap_or_else(|e| fail(3, e)));
            }
            let gemm = vggt_bench::gemm_floor(&gpu, agg.dims.dim, if cpu { 512 } else { 8192 }).unwrap_or_else(|e| fail(3, e));
            print!("{}", vggt_bench::format_table(&gpu, pkg.manifest.total_bytes(), &runs, &gemm));
        }
        Cmd::Bench { what: BenchWhat::Kernels { size, reps } } => {
            let gpu = gpu(cli.f32);
            let scale = match size {
                SizeArg::Small => Scale::Small,
                SizeArg::Full => Scale::Full,
                SizeArg::Auto if gpu.info.device_type == "Cpu" => Scale::Small,
                SizeArg::Auto => Scale::Full,
            };
            match run_all(&gpu, scale, reps.max(1)) {
                Ok(rows) => print!("{}", format_table(&gpu, &rows)),
                Err(e) => fail(3, e),
            }
        }
    }
}

/// WIDTHxHEIGHT.
fn parse_size(size: &str) -> (usize, usize) {
    size.split_once('x')
        .and_then(|(w, h)| Some((w.parse::<usize>().ok()?, h.parse::<usize>().ok()?)))
        .unwrap_or_else(|| fail(1, format!("bad size {size:?} (WIDTHxHEIGHT)")))
}

/// The Qwen decoder's policy for a `bench qwen --formats` entry.
fn qwen_policy(format: &str) -> &'static str {
    match format {
        "q4" => "llm.layers.=q4",
        "q8" => "llm.=q8",
        "f16" => "llm.=f16",
        other => fail(1, format!("unknown format {other:?} (q4, q8, f16)")),
    }
}

/// A random package of `config` (model `kind`, storage `policy`) under target/bench-packages,
/// written once and reused while the config is the same.
fn random_package(config: &std::path::Path, kind: &str, label: &str, policy: &str) -> PathBuf {
    let stem = config.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let dir = PathBuf::from("target/bench-packages").join(format!("{stem}-{label}"));
    let text = std::fs::read_to_string(config).unwrap_or_else(|e| fail(1, format!("{}: {e}", config.display())));
    let cfg: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| fail(1, format!("{}: {e}", config.display())));
    if Package::open(&dir).is_ok_and(|p| p.manifest.config == cfg) {
        return dir;
    }
    eprintln!("writing random weights to {} ({})", dir.display(), if policy.is_empty() { "default policy" } else { policy });
    let _ = std::fs::remove_dir_all(&dir);
    let opts = ConvertOptions { policy: Policy::parse(policy).unwrap_or_else(|e| fail(1, e)), max_shard: 128 << 20 };
    let b = bar();
    let mut progress = |p: Progress| {
        b.set_length(p.total as u64);
        b.set_position(p.done as u64);
    };
    let kind = ModelKind::from_id(kind).unwrap_or_else(|| fail(1, format!("no model kind {kind}")));
    write_random(&dir, kind, cfg, &opts, 0x5eed, &mut progress).unwrap_or_else(|e| fail(1, e));
    b.finish_and_clear();
    dir
}

/// Error table over two weight distributions: Gaussian and Student-t with 5 degrees of freedom
/// (heavy tails, as trained transformer matrices have), 256 x 2048.
fn quant_error() {
    let mut rng = Rng::new(2026);
    let (rows, cols) = (256, 2048);
    let gauss: Vec<f32> = rng.normals(rows * cols, 0.02);
    let heavy: Vec<f32> = (0..rows * cols)
        .map(|_| {
            let chi: f32 = (0..5).map(|_| rng.normal().powi(2)).sum::<f32>() / 5.0;
            0.02 * rng.normal() / chi.sqrt()
        })
        .collect();
    println!("| format | bits/weight | Gaussian: RMS err / RMS w | max err / RMS w | Student-t(5): RMS err / RMS w | max err / RMS w |");
    println!("|---|---|---|---|---|---|");
    for f in [WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4] {
        let (g_rms, g_max) = roundtrip_error(f, &gauss, rows, cols);
        let (h_rms, h_max) = roundtrip_error(f, &heavy, rows, cols);
        println!("| {} | {:.2} | {g_rms:.2e} | {g_max:.2e} | {h_rms:.2e} | {h_max:.2e} |", f.name(), f.bits_per_weight());
    }
}
