//! The measured GEMM tiling remembered per device, so that only the first start on an adapter pays
//! for the measurement (0.7 s of a CLI start on lavapipe; in a browser, six pipelines compiled and
//! timed before the model loads). A record is a line of text keyed by what the measurement depends
//! on: the adapter, its backend and driver, the activation type, the tilings its limits allow and
//! the GEMM core's source. A new driver, browser or kernel measures again; a record naming a
//! tiling the device can no longer run is ignored. The stores: a JSON file natively
//! (`native::tile_store`), Cache Storage in a browser (`web_tile_store`).

use sha2::{Digest, Sha256};

use super::gemm_tune::tune_gemm;
use crate::gpu::{GemmChoice, GemmTile, Gpu, Result, TileSource};

/// What the device's measurement depends on, as one line (the store's key). A browser that names
/// no adapter gives two GPUs of one profile the same key: the tiling recalled is then still one the
/// device runs (`recall` checks), only perhaps not its fastest.
pub fn key(gpu: &Gpu) -> String {
    let i = &gpu.info;
    let candidates: Vec<String> = gpu.gemm_candidates().iter().map(|t| t.to_string()).collect();
    let core = hex::encode(&Sha256::digest(super::GEMM_CORE.as_bytes())[..8]);
    format!("{} | {} | {} | {} | {:?} activations | tilings {} | core {core}", i.name, i.device_type, i.backend, i.driver, gpu.act, candidates.join(","))
}

/// Whether the tiling is still to be measured: nothing decided yet (pinned, from the environment),
/// no matrix units (their tiling is fixed), more than one candidate, and a device that runs work.
pub fn needs_measuring(gpu: &Gpu) -> bool {
    !gpu.gemm_tile_decided() && gpu.env_gemm_tile().is_none() && gpu.coop_tile().is_none() && gpu.gemm_candidates().len() > 1 && !gpu.is_dry_run()
}

/// Use a remembered tiling (the text a measurement's `remember` gave) if it is one this device can
/// still choose; true when it was taken.
fn recall(gpu: &Gpu, remembered: &str) -> bool {
    let Some(tile) = GemmTile::parse(remembered).filter(|t| gpu.gemm_candidates().contains(t)) else {
        return false;
    };
    gpu.set_gemm_choice(GemmChoice { tile, source: TileSource::Remembered, shape: [0; 3], timings: vec![] });
    true
}

/// The text to remember for a choice: only a measurement is worth keeping.
fn remember(c: &GemmChoice) -> Option<String> {
    (c.source == TileSource::Measured).then(|| c.tile.to_string())
}

/// `tune_gemm`, reading and writing a store: `recalled` is what the store holds for `key(gpu)`;
/// returns the choice and the text to store (None: nothing new to keep).
pub async fn tune_gemm_with(gpu: &Gpu, recalled: Option<&str>) -> Result<(GemmChoice, Option<String>)> {
    if needs_measuring(gpu) {
        if let Some(text) = recalled {
            if recall(gpu, text) {
                return Ok((gpu.gemm_choice(), None));
            }
            log::info!("the remembered GEMM tiling {text:?} is not one this device can use: measuring again");
        }
    }
    let c = tune_gemm(gpu).await?;
    let keep = remember(&c);
    Ok((c, keep))
}
