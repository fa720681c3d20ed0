//! The command line's store of measured kernel choices (`kernels::tuning_memo`: the GEMM tiling,
//! the attention kernel): one JSON object `{key: choice}` in the package cache folder
//! (`$SPATIAL_MLLM_CACHE`, else `$XDG_CACHE_HOME/spatial-mllm`), next to the converted packages.
//! Deleting the file measures again on the next start. A store that cannot be read or written
//! costs only a measurement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::gpu::Gpu;
use crate::kernels::tuning_memo::{self, AttentionKernel, GemmTiling, Tuned};

pub const FILE: &str = "kernel-tuning.json";

pub fn path() -> PathBuf {
    super::hub::package_cache_dir().join(FILE)
}

fn read(path: &Path) -> BTreeMap<String, String> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Write through a temporary file and a rename, so that a reader never sees half a file.
fn write(path: &Path, records: &BTreeMap<String, String>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(records).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

/// Decide one of the device's choices: remembered in the store at `path`, else measured (and kept).
pub fn tune<T: Tuned>(t: &mut T, gpu: &Gpu, path: &Path) -> crate::gpu::Result<T::Choice> {
    if !t.needs_measuring(gpu) {
        // Pinned, set in the environment, on matrix units or nothing to choose: no store to read.
        return pollster::block_on(t.tune(gpu));
    }
    let key = tuning_memo::key(t, gpu);
    let mut records = read(path);
    let (choice, keep) = pollster::block_on(tuning_memo::tune_with(t, gpu, records.get(&key).map(String::as_str)))?;
    if let Some(text) = keep {
        // Read again: another process may have written since.
        records = read(path);
        records.insert(key, text);
        if let Err(e) = write(path, &records) {
            log::warn!("could not remember the {} in {}: {e} (the next start measures again)", T::WHAT, path.display());
        }
    }
    Ok(choice)
}

/// Every measured choice of the device: the GEMM tiling, then the attention kernel.
pub fn tune_device(gpu: &Gpu, path: &Path) -> crate::gpu::Result<()> {
    tune(&mut GemmTiling, gpu, path)?;
    tune(&mut AttentionKernel, gpu, path)?;
    Ok(())
}
