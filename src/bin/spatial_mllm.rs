//! The native command line: device information and benchmarks (conversion and model runs come
//! with the model-package and model issues).

use clap::{Parser, Subcommand, ValueEnum};
use spatial_mllm_web::bench::{format_table, run_all, Scale};
use spatial_mllm_web::gpu::{Gpu, GpuOptions};

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
    /// Show the adapter and the negotiated limits and features.
    Info,
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
}

#[derive(Clone, Copy, ValueEnum)]
enum SizeArg {
    /// `small` on a CPU adapter, `full` on a GPU.
    Auto,
    Small,
    Full,
}

/// Exit codes: 0 ok, 2 no adapter / device error, 3 benchmark failure.
fn main() {
    env_logger::init();
    let cli = Cli::parse();
    let gpu = match pollster::block_on(Gpu::new(GpuOptions { allow_f16: !cli.f32, ..Default::default() })) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    match cli.cmd {
        Cmd::Info => println!("{}", gpu.info),
        Cmd::Bench { what: BenchWhat::Kernels { size, reps } } => {
            let scale = match size {
                SizeArg::Small => Scale::Small,
                SizeArg::Full => Scale::Full,
                SizeArg::Auto if gpu.info.device_type == "Cpu" => Scale::Small,
                SizeArg::Auto => Scale::Full,
            };
            match run_all(&gpu, scale, reps.max(1)) {
                Ok(rows) => print!("{}", format_table(&gpu, &rows)),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(3);
                }
            }
        }
    }
}
