//! The command line's store of measured GEMM tilings (`kernels::gemm_memo`): one JSON object
//! `{key: tiling}` in the package cache folder (`$SPATIAL_MLLM_CACHE`, else
//! `$XDG_CACHE_HOME/spatial-mllm`), next to the converted packages. Deleting the file measures
//! again on the next start. A store that cannot be read or written costs only a measurement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::gpu::{GemmChoice, Gpu};
use crate::kernels::gemm_memo;

pub const FILE: &str = "gemm-tilings.json";

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

/// Decide the device's GEMM tiling: remembered in the store at `path`, else measured (and kept).
pub fn tune_gemm(gpu: &Gpu, path: &Path) -> crate::gpu::Result<GemmChoice> {
    if !gemm_memo::needs_measuring(gpu) {
        // Pinned, set in the environment, on matrix units or nothing to choose: no store to read.
        return pollster::block_on(crate::kernels::gemm_tune::tune_gemm(gpu));
    }
    let key = gemm_memo::key(gpu);
    let mut records = read(path);
    let (choice, keep) = pollster::block_on(gemm_memo::tune_gemm_with(gpu, records.get(&key).map(String::as_str)))?;
    if let Some(tile) = keep {
        records.insert(key, tile);
        if let Err(e) = write(path, &records) {
            log::warn!("could not remember the GEMM tiling in {}: {e} (the next start measures again)", path.display());
        }
    }
    Ok(choice)
}
