//! `sample`: space-aware frame sampling of a video, full mode against fast mode.

use std::path::PathBuf;

use clap::Args;
use spatial_mllm_web::model::spatial::frame_sampler::{candidate_indices, sample_frames, SamplerConfig};
use spatial_mllm_web::native::answer::load_vggt;
use spatial_mllm_web::native::video::{decode_frames, probe};

use crate::{gpu, hub_model, OrExit};

#[derive(Args)]
pub struct SampleArgs {
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
}

pub fn sample(f32_only: bool, args: SampleArgs) {
    let SampleArgs { vggt, video, k, json } = args;
    let gpu = gpu(f32_only);
    let v = load_vggt(&gpu, &hub_model(&vggt)).or_exit();
    let info = probe(&video).or_exit();
    let mut picks = Vec::new();
    for (name, cfg) in [("full", SamplerConfig::full()), ("fast", SamplerConfig::fast())] {
        let cfg = SamplerConfig { k, ..cfg };
        let t0 = std::time::Instant::now();
        let cands = candidate_indices(info.frames, &cfg).or_exit();
        let frames = decode_frames(&video, &info, &cands).or_exit();
        let picked = pollster::block_on(sample_frames(&gpu, &v, &frames, &cands, &cfg)).or_exit();
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
