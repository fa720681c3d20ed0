//! The native command line: device information, model conversion, benchmarks.
//!
//! This file holds the command-line definitions, the dispatch, and what the commands share (exit
//! codes, the GPU, model arguments, progress bars); each command or command group has a module.

mod bench;
mod convert;
mod eval;
mod eval_merge;
mod info;
mod run;
mod sample;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use spatial_mllm_web::gpu::{Gpu, GpuOptions};
use spatial_mllm_web::native::error::{Classify, ErrorClass, EXIT_UNEXPECTED};
use spatial_mllm_web::native::hub::{resolve_model, HubProgress};

/// The exit codes, as `--help` shows them (docs/cli.md repeats them; tests/cli.rs checks each).
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  something unexpected (a bug: please report it with the message)
  2  bad input: a missing or unreadable file, a video or option that cannot be used, a usage error
  3  the model or its package: missing, corrupt, of the wrong kind, or failing to download
  4  the GPU: no adapter, a device that could not be created or was lost, out of memory
  5  a check failed (bench soak: memory grew past its bound, or an answer differed)";

#[derive(Parser)]
#[command(name = "spatial-mllm", version, about = "Spatial-MLLM on WebGPU (native)", after_help = EXIT_CODES)]
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
    Run(run::RunArgs),
    /// Evaluate on a VSI-Bench annotation file (JSON or JSON lines) with the reference prompts:
    /// multiple choice by normalised exact match, numbers by Mean Relative Accuracy; per-task, micro
    /// and macro averages. One result line per sample is appended to RESULTS; a rerun resumes.
    Eval(eval::EvalArgs),
    /// Merge the shard results files of `eval --shard K/N` (files or folders): checks that they are
    /// the shards of one evaluation, all there, disjoint and complete, and prints the table `eval`
    /// prints for a whole run.
    EvalMerge(eval_merge::EvalMergeArgs),
    /// Space-aware frame sampling of a video with a VGGT package: the frames the full mode (128
    /// candidates at 518 px) and the fast mode (32 at 224 px) pick, and how far they agree.
    Sample(sample::SampleArgs),
    /// Show the adapter and the negotiated limits and features.
    Info,
    /// Convert a Hugging Face checkpoint directory (Spatial-MLLM v1.0 / v1.1, Qwen2.5-VL, VGGT-1B)
    /// into a model package, or write a package of random weights with --random.
    Convert(convert::ConvertArgs),
    /// Verify a package's shards (sizes and SHA-256).
    Verify(convert::VerifyArgs),
    /// Round-trip error of each weight format on weights drawn like trained ones.
    QuantError,
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
}

fn main() {
    // Before anything else: the environment is set while this is the only thread.
    spatial_mllm_web::native::runtime_dir::give_private_runtime_dir();
    env_logger::init();
    // clap's usage errors exit with 2, as bad input does; --help and --version with 0.
    let cli = Cli::parse();
    // A panic is a bug: its message is printed by the hook, the exit code says "unexpected".
    if std::panic::catch_unwind(|| dispatch(cli)).is_err() {
        std::process::exit(EXIT_UNEXPECTED);
    }
}

fn dispatch(cli: Cli) {
    match cli.cmd {
        Cmd::Info => info::info(cli.f32),
        Cmd::Sample(args) => sample::sample(cli.f32, args),
        Cmd::Eval(args) => eval::eval(cli.f32, args),
        Cmd::EvalMerge(args) => eval_merge::eval_merge(args),
        Cmd::Run(args) => run::run(cli.f32, args),
        Cmd::Convert(args) => convert::convert(args),
        Cmd::Verify(args) => convert::verify(args),
        Cmd::QuantError => convert::quant_error(),
        Cmd::Bench { what } => bench::bench(cli.f32, what),
    }
}

/// Print the error and exit with its class's code (`EXIT_CODES`).
fn fail(class: ErrorClass, msg: impl std::fmt::Display) -> ! {
    exit_with(class.exit_code(), msg)
}

fn exit_with(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(code)
}

/// Bad input: the arguments or the files they name.
fn bad_input(msg: impl std::fmt::Display) -> ! {
    fail(ErrorClass::BadInput, msg)
}

/// `result.or_exit()`: the value, or the error printed and the process ended with its class's code.
trait OrExit<T> {
    fn or_exit(self) -> T;
}

impl<T, E: Classify + std::fmt::Display> OrExit<T> for Result<T, E> {
    fn or_exit(self) -> T {
        self.unwrap_or_else(|e| fail(e.class(), e))
    }
}

fn gpu(f32_only: bool) -> Gpu {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: !f32_only, ..Default::default() })).or_exit();
    // The GEMM core's tiling and the attention kernel, measured on this adapter's first start.
    let store = spatial_mllm_web::native::tuning_store::path();
    spatial_mllm_web::native::tuning_store::tune_device(&gpu, &store).or_exit();
    gpu
}

/// A --model / --vggt argument as a package directory: a local path as it is, or a Hugging Face
/// repository ORG/NAME[@REVISION] downloaded and converted once into the package cache.
fn hub_model(arg: &str) -> PathBuf {
    let mut hb = HubBar::new();
    resolve_model(arg, &mut |e| hb.update(e)).or_exit()
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
                self.bar.set_style(ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}").unwrap());
                self.bar.set_message(format!("({files} files)"));
                self.converting = false;
            }
            HubProgress::Bytes { file, done, total } => {
                self.bar.set_length(total);
                self.bar.set_position(done);
                self.bar.set_message(file.to_string());
            }
            HubProgress::Retry { url, attempt, wait, why } => self.bar.suspend(|| eprintln!("{url}: {why}; retry {attempt} in {:.1} s", wait.as_secs_f64())),
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

/// A progress bar counting tensors (conversion, random packages).
fn bar() -> ProgressBar {
    let b = ProgressBar::new(0);
    b.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} tensors {elapsed} {msg}").unwrap());
    b
}
