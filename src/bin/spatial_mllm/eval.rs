//! `eval`: VSI-Bench, ScanQA or SQA3D over a results file that a rerun resumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use spatial_mllm_web::eval::annotations::{load_qa_annotations, load_vsi_annotations};
use spatial_mllm_web::eval::prompt::PromptStyle;
use spatial_mllm_web::eval::shard::{file_sha256, package_sha256};
use spatial_mllm_web::eval::{evaluate_qa, evaluate_with, Identified, QaBenchmark, Shard, ShardPlan};
use spatial_mllm_web::model::qwen::generate::GenerationConfig;
use spatial_mllm_web::native::answer::{check_frames, encode, load_model, EncodedVideo, FrameChoice, Source};
use spatial_mllm_web::native::error::{ErrorClass, NResult};

use crate::{bad_input, gpu, hub_model, OrExit};

#[derive(Args)]
pub struct EvalArgs {
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
    /// The results file (JSON lines); with --shard, the results folder, which gets shard-K-of-N.jsonl.
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
    /// Evaluate shard K of N (K from 0): the samples at positions i with i % N == K of the annotation
    /// order (after --limit), into RESULTS/shard-K-of-N.jsonl; `eval-merge` joins the shards.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchmarkArg {
    Vsi,
    Scanqa,
    Sqa3d,
}

pub fn eval(f32_only: bool, args: EvalArgs) {
    let shard = args.shard.as_ref().map(|s| parse_shard(s, &args.results));
    check_frames(args.frames).or_exit();
    let pkg = hub_model(&args.model);
    let plan = shard.map(|s| shard_plan(s, f32_only, &args, &pkg));
    let EvalArgs { model: _, annotations, videos, results, frames, max_new_tokens, benchmark, v10_prompts, limit, shard: _ } = args;
    let max_new_tokens = max_new_tokens.unwrap_or(if benchmark == BenchmarkArg::Vsi { 1024 } else { 256 });
    let results = plan.as_ref().map_or(results, |p| p.results_path());
    let report_bad = |errors: &[spatial_mllm_web::eval::AnnotationError]| {
        for e in errors {
            eprintln!("{}: {e} (skipped)", annotations.display());
        }
    };
    let read_err = |e: std::io::Error| -> ! { bad_input(format!("{}: {e}", annotations.display())) };
    let gpu = gpu(f32_only);
    let (m, tok) = load_model(&gpu, &pkg).or_exit();
    // Greedy, stopping at the end-of-turn tokens: the reference's do_sample with top_p 0.001.
    let gen = GenerationConfig::greedy(max_new_tokens, m.cfg.tokens.eos.clone());
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} samples {elapsed} eta {eta}").unwrap());
    // Questions come grouped by scene: the last video stays encoded.
    let mut current: Option<(String, EncodedVideo)> = None;
    // A failure is recorded in the results file by its message (a rerun retries the sample).
    let mut answer_video = |rel: &str, prompt: &str| -> NResult<String> {
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
    let results_fail = |e: std::io::Error| -> ! { bad_input(format!("{}: {e}", results.display())) };
    let (evaluated, resumed, failures, results_errors, table) = if benchmark == BenchmarkArg::Vsi {
        let parsed = load_vsi_annotations(&annotations).unwrap_or_else(|e| read_err(e));
        report_bad(&parsed.errors);
        let samples = this_run(parsed.items, limit, &plan);
        bar.set_length(samples.len() as u64);
        let style = if v10_prompts { PromptStyle::V1_0 } else { PromptStyle::V1_1 };
        let s = evaluate_with(&samples, style, |s, prompt| answer_video(&s.video_path(), prompt).map_err(|e| e.to_string()), &results)
            .unwrap_or_else(|e| results_fail(e));
        (s.evaluated, s.resumed, s.failures, s.results_errors, s.metrics.table())
    } else {
        let which = if benchmark == BenchmarkArg::Scanqa { QaBenchmark::ScanQa } else { QaBenchmark::Sqa3d };
        let parsed = load_qa_annotations(&annotations, Some(which)).unwrap_or_else(|e| read_err(e));
        report_bad(&parsed.errors);
        let samples = this_run(parsed.items, limit, &plan);
        bar.set_length(samples.len() as u64);
        let s = evaluate_qa(&samples, |s, prompt| answer_video(&s.video, prompt).map_err(|e| e.to_string()), &results).unwrap_or_else(|e| results_fail(e));
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

/// `--shard K/N`, refused (exit code 2, bad input) before anything is loaded when malformed or when `--results` is a file.
fn parse_shard(arg: &str, results: &Path) -> Shard {
    let shard = arg.parse::<Shard>().or_exit();
    if results.is_file() {
        bad_input(format!("{}: with --shard, --results names a folder (it gets shard-K-of-N.jsonl), not a file", results.display()));
    }
    shard
}

/// The samples this run evaluates: the first `limit` of the file, then this shard's of them (its
/// results file started).
fn this_run<S: Identified>(mut samples: Vec<S>, limit: Option<usize>, plan: &Option<ShardPlan>) -> Vec<S> {
    samples.truncate(limit.unwrap_or(usize::MAX));
    match plan {
        Some(p) => p.start(samples).or_exit(),
        None => samples,
    }
}

/// The shard's plan: its results file in the --results folder and the header's identity of the evaluation.
fn shard_plan(shard: Shard, f32_only: bool, args: &EvalArgs, pkg: &Path) -> ShardPlan {
    let (benchmark, prompts) = match args.benchmark {
        BenchmarkArg::Vsi => ("vsi", if args.v10_prompts { "v1.0" } else { "v1.1" }),
        BenchmarkArg::Scanqa => ("scanqa", "conversation"),
        BenchmarkArg::Sqa3d => ("sqa3d", "conversation"),
    };
    let max_new_tokens = args.max_new_tokens.unwrap_or(if args.benchmark == BenchmarkArg::Vsi { 1024 } else { 256 });
    ShardPlan {
        shard,
        dir: args.results.clone(),
        benchmark: benchmark.to_string(),
        model: args.model.clone(),
        model_sha256: package_sha256(pkg).unwrap_or_else(|e| crate::fail(ErrorClass::Model, format!("{}: {e}", pkg.display()))),
        annotations: args.annotations.display().to_string(),
        annotations_sha256: file_sha256(&args.annotations).unwrap_or_else(|e| bad_input(format!("{}: {e}", args.annotations.display()))),
        config: BTreeMap::from([
            ("frames".to_string(), args.frames.into()),
            ("max_new_tokens".to_string(), max_new_tokens.into()),
            ("prompts".to_string(), prompts.into()),
            ("f32".to_string(), f32_only.into()),
            ("limit".to_string(), args.limit.into()),
        ]),
    }
}
