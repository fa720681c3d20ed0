//! The package commands: `convert` (a checkpoint or random weights into a package), `verify` (a
//! package's shards) and `quant-error` (each weight format's round-trip error).

use std::path::PathBuf;

use clap::Args;
use spatial_mllm_web::native::hub::{model_source, HubClient, ModelSource};
use spatial_mllm_web::rng::Rng;
use spatial_mllm_web::weights::convert::{convert as convert_checkpoint, write_random, ConvertOptions, Progress};
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;
use spatial_mllm_web::weights::quant::roundtrip_error;
use spatial_mllm_web::weights::WeightFormat;

use crate::{bad_input, bar, HubBar, OrExit};

#[derive(Args)]
pub struct ConvertArgs {
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
}

#[derive(Args)]
pub struct VerifyArgs {
    dir: PathBuf,
}

pub fn convert(args: ConvertArgs) {
    let ConvertArgs { src, dst, random, kind, policy, shard_kib } = args;
    let opts = ConvertOptions { policy: Policy::parse(&policy).or_exit(), max_shard: shard_kib << 10 };
    let b = bar();
    let mut progress = |p: Progress| {
        b.set_length(p.total as u64);
        b.set_position(p.done as u64);
        b.set_message(p.name.to_string());
    };
    let result = if random {
        let kind =
            ModelKind::from_id(&kind).unwrap_or_else(|| bad_input(format!("unknown model kind {kind:?} (spatial-mllm-v1.0, spatial-mllm-v1.1, qwen2.5-vl, vggt)")));
        let text = std::fs::read_to_string(&src).unwrap_or_else(|e| bad_input(format!("{src}: {e}")));
        let cfg = serde_json::from_str(&text).unwrap_or_else(|e| bad_input(format!("{src}: {e}")));
        write_random(&dst, kind, cfg, &opts, 0x5eed, &mut progress)
    } else {
        match model_source(&src).or_exit() {
            ModelSource::Local(src) => convert_checkpoint(&src, &dst, &opts, &mut progress),
            ModelSource::Hub(repo) => {
                let client = HubClient::from_env();
                let mut hb = HubBar::new();
                let snap = client.download(&repo, &mut |e| hb.update(e)).or_exit();
                drop(hb);
                if snap.package {
                    client.package_into(&snap, &dst, None, &mut |_| {}).or_exit();
                    Package::open(&dst).map(|p| p.manifest)
                } else {
                    convert_checkpoint(&snap.dir, &dst, &opts, &mut progress)
                }
            }
        }
    };
    b.finish_and_clear();
    let m = result.or_exit();
    println!(
        "wrote {} ({}): {} tensors in {} shards, {:.1} MiB",
        dst.display(),
        m.model_kind,
        m.tensors.len(),
        m.shards.len(),
        m.total_bytes() as f64 / (1 << 20) as f64
    );
}

pub fn verify(args: VerifyArgs) {
    let VerifyArgs { dir } = args;
    let p = Package::open(&dir).or_exit();
    p.verify().or_exit();
    println!("{}: {} shards verified ({} bytes)", dir.display(), p.manifest.shards.len(), p.manifest.total_bytes());
}

/// Error table over two weight distributions: Gaussian and Student-t with 5 degrees of freedom
/// (heavy tails, as trained transformer matrices have), 256 x 2048.
pub fn quant_error() {
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
