//! Choosing the plain attention kernel for this device by measurement (once; memoised on the
//! `Gpu`), as the GEMM tiling is (`gemm_tune`): `flash_blocked` keeps a 4x4 block of scores and
//! a 4-query slice of the output in registers and `flash_tile` one query, so which is faster
//! turns on the GPU's registers and occupancy, which no rule predicts across GPUs.
//! The problems are the two attentions that dominate time to first token: VGGT's full attention
//! (heads of 64) and Qwen's causal prefill (16 query heads of 128 over 2 key-value heads), at a
//! token count grown from 64 until the default kernel takes long enough to time; the candidate with the
//! least total wins, the default on a near tie. Nothing is measured where the matrix units run
//! the attention, where `SPATIAL_MLLM_ATTENTION` names a kernel, or in a dry run.

use super::attention::{attention_with, Attention, HeadsView, Kernel};
use super::measure::fastest;
use crate::gpu::{AttentionPick, Gpu, PlainAttention, Recorder, Result, Tensor, TileSource, BLOCKED_STORAGE};

/// Token counts tried in turn with the default kernel (a CPU adapter such as SwiftShader takes
/// about a second for 256; a GPU needs about 2 048 to take long enough).
const LADDER: [usize; 6] = [64, 128, 256, 512, 1024, 2048];

/// (query heads, key-value heads, head dim, causal) of the measured problems.
const PROBLEMS: [(usize, usize, usize, bool); 2] = [(8, 8, 64, false), (16, 2, 128, true)];

/// Whether the kernel is still to be measured: nothing decided yet, no matrix units (they run
/// `flash_coop`), no kernel named in the environment, a choice to make, and a device that runs work.
pub fn needs_measuring(gpu: &Gpu) -> bool {
    !gpu.attention_decided() && gpu.coop_tile().is_none() && gpu.env_attention().is_none() && gpu.attention_candidates().len() > 1 && !gpu.is_dry_run()
}

/// The device's plain attention kernel: measured now unless already decided.
pub async fn tune_attention(gpu: &Gpu) -> Result<AttentionPick> {
    if !needs_measuring(gpu) {
        if !gpu.attention_decided() {
            let p = gpu.attention_pick();
            gpu.set_attention_pick(p);
        }
        return Ok(gpu.attention_pick());
    }
    let found = fastest(gpu, "attention kernel", &gpu.attention_candidates(), &LADDER, Problems::new, |rec, kernel, p| p.record(rec, kernel)).await?;
    let pick = AttentionPick { kernel: found.best, source: TileSource::Measured, tokens: found.size, timings: found.timings };
    log::info!("attention kernel {pick}");
    gpu.set_attention_pick(pick.clone());
    Ok(pick)
}

/// The launcher's name for a plain kernel (candidates only name storages the adapter offers).
fn launcher_kernel(k: PlainAttention) -> Kernel {
    match k {
        PlainAttention::Tile => Kernel::Tile,
        PlainAttention::Blocked { storage } if storage <= BLOCKED_STORAGE[0] => Kernel::BlockedMinStorage,
        PlainAttention::Blocked { .. } => Kernel::Blocked,
    }
}

/// The measured problems' q, k and v (zeros: the time does not depend on the values).
struct Problems {
    qkv: Vec<[Tensor; 3]>,
}

impl Problems {
    fn new(gpu: &Gpu, tokens: usize) -> Result<Problems> {
        let qkv = PROBLEMS
            .iter()
            .map(|&(hq, hkv, d, _)| {
                Ok([
                    gpu.upload_act(&vec![0.0; tokens * hq * d], &[tokens, hq * d])?,
                    gpu.upload_act(&vec![0.0; tokens * hkv * d], &[tokens, hkv * d])?,
                    gpu.upload_act(&vec![0.0; tokens * hkv * d], &[tokens, hkv * d])?,
                ])
            })
            .collect::<Result<_>>()?;
        Ok(Problems { qkv })
    }

    /// One run of both problems with `kernel`.
    fn record(&self, rec: &mut Recorder, kernel: PlainAttention) -> Result<()> {
        for (&(hq, hkv, d, causal), [q, k, v]) in PROBLEMS.iter().zip(&self.qkv) {
            let a = Attention {
                q: HeadsView::dense(q, hq),
                k: HeadsView::dense(k, hkv),
                v: HeadsView::dense(v, hkv),
                head_dim: d,
                causal,
                q_pos0: 0,
                segments: None,
                scale: 1.0 / (d as f32).sqrt(),
            };
            attention_with(rec, &a, launcher_kernel(kernel))?;
        }
        Ok(())
    }
}
