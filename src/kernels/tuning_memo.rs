//! Kernel choices measured on a device (the GEMM tiling, `gemm_tune`; the plain attention kernel,
//! `attention_tune`) remembered per device, so that only the first start on an adapter pays for
//! the measurement (0.7 s of a CLI start on lavapipe; in a browser, a dozen pipelines compiled and
//! timed before the model loads). A record is a line of text keyed by what the measurement depends
//! on: the adapter, its backend and driver, the activation type, the candidates its limits allow
//! and the kernel's source. A new driver, browser or kernel measures again; a record naming a
//! candidate the device can no longer run is ignored. The stores: a JSON file natively
//! (`native::tuning_store`), Cache Storage in a browser (`web_tuning_store`).

use sha2::{Digest, Sha256};

use crate::gpu::{AttentionPick, GemmChoice, GemmTile, Gpu, PlainAttention, Result, TileSource};

/// A choice measured once per device (and, for a model's decode step, per model shape): the
/// implementor holds what the choice is made for (nothing for the device's kernels; the model).
pub trait Tuned {
    /// What is chosen, for messages.
    const WHAT: &'static str;
    type Choice;
    /// What the measurement depends on beyond the device: the candidates and the kernels' source.
    fn key_tail(&self, gpu: &Gpu) -> String;
    /// Whether it is still to be measured (not decided, nothing set by hand, a choice to make).
    fn needs_measuring(&self, gpu: &Gpu) -> bool;
    /// Take a remembered choice if it is one this device can still make; true when taken.
    fn recall(&mut self, gpu: &Gpu, text: &str) -> bool;
    /// The text to remember for a choice: only a measurement is worth keeping.
    fn remember(&self, c: &Self::Choice) -> Option<String>;
    /// The choice: measured now unless already decided.
    fn tune(&mut self, gpu: &Gpu) -> impl std::future::Future<Output = Result<Self::Choice>>;
}

/// The store's key for `T` on this device, as one line. A browser that names no adapter gives
/// two GPUs of one profile the same key: the choice recalled is then still one the device runs
/// (`recall` checks), only perhaps not its fastest.
pub fn key<T: Tuned>(t: &T, gpu: &Gpu) -> String {
    let i = &gpu.info;
    format!("{} | {} | {} | {} | {:?} activations | {}", i.name, i.device_type, i.backend, i.driver, gpu.act, t.key_tail(gpu))
}

/// A short hash of kernel sources, for a key.
pub fn source_hash(src: &str) -> String {
    hex::encode(&Sha256::digest(src.as_bytes())[..8])
}

/// `T::tune`, reading and writing a store: `recalled` is what the store holds for `key::<T>(gpu)`;
/// returns the choice and the text to store (None: nothing new to keep).
pub async fn tune_with<T: Tuned>(t: &mut T, gpu: &Gpu, recalled: Option<&str>) -> Result<(T::Choice, Option<String>)> {
    if t.needs_measuring(gpu) {
        if let Some(text) = recalled {
            if t.recall(gpu, text) {
                return Ok((t.tune(gpu).await?, None));
            }
            log::info!("the remembered {} {text:?} is not one this device can use: measuring again", T::WHAT);
        }
    }
    let c = t.tune(gpu).await?;
    let keep = t.remember(&c);
    Ok((c, keep))
}

/// The GEMM core's tiling (`gemm_tune`).
pub struct GemmTiling;

impl Tuned for GemmTiling {
    const WHAT: &'static str = "GEMM tiling";
    type Choice = GemmChoice;

    fn key_tail(&self, gpu: &Gpu) -> String {
        let candidates: Vec<String> = gpu.gemm_candidates().iter().map(|t| t.to_string()).collect();
        format!("tilings {} | core {}", candidates.join(","), source_hash(super::GEMM_CORE))
    }

    /// Matrix units have one fixed tiling.
    fn needs_measuring(&self, gpu: &Gpu) -> bool {
        !gpu.gemm_tile_decided() && gpu.env_gemm_tile().is_none() && gpu.coop_tile().is_none() && gpu.gemm_candidates().len() > 1 && !gpu.is_dry_run()
    }

    fn recall(&mut self, gpu: &Gpu, text: &str) -> bool {
        let Some(tile) = GemmTile::parse(text).filter(|t| gpu.gemm_candidates().contains(t)) else {
            return false;
        };
        gpu.set_gemm_choice(GemmChoice { tile, source: TileSource::Remembered, shape: [0; 3], timings: vec![] });
        true
    }

    fn remember(&self, c: &GemmChoice) -> Option<String> {
        (c.source == TileSource::Measured).then(|| c.tile.to_string())
    }

    async fn tune(&mut self, gpu: &Gpu) -> Result<GemmChoice> {
        super::gemm_tune::tune_gemm(gpu).await
    }
}

/// The plain attention kernel of prefill and the encoders (`attention_tune`).
pub struct AttentionKernel;

impl Tuned for AttentionKernel {
    const WHAT: &'static str = "attention kernel";
    type Choice = AttentionPick;

    fn key_tail(&self, gpu: &Gpu) -> String {
        let candidates: Vec<String> = gpu.attention_candidates().iter().map(|k| k.to_string()).collect();
        format!("attention kernels {} | kernel {}", candidates.join(","), source_hash(super::ATTENTION_WGSL.code))
    }

    fn needs_measuring(&self, gpu: &Gpu) -> bool {
        super::attention_tune::needs_measuring(gpu)
    }

    fn recall(&mut self, gpu: &Gpu, text: &str) -> bool {
        let storage = gpu.limits.max_compute_workgroup_storage_size;
        let Some(kernel) = PlainAttention::parse(text, storage).filter(|k| gpu.attention_candidates().contains(k)) else {
            return false;
        };
        gpu.set_attention_pick(AttentionPick { kernel, source: TileSource::Remembered, tokens: 0, timings: vec![] });
        true
    }

    fn remember(&self, p: &AttentionPick) -> Option<String> {
        (p.source == TileSource::Measured).then(|| p.kernel.to_string())
    }

    async fn tune(&mut self, gpu: &Gpu) -> Result<AttentionPick> {
        super::attention_tune::tune_attention(gpu).await
    }
}
