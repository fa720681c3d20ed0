//! A model package in a local directory (native): open, verify, read tensors on the CPU, load
//! onto the GPU shard by shard with progress.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{io_err, PResult};
use super::loader::{read_tensor, upload_shard, verify_shard, GpuParam};
use super::manifest::{Manifest, MANIFEST};
use crate::gpu::Gpu;

pub struct Package {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Loading progress: shards and bytes done of the totals.
pub struct LoadProgress {
    pub shards_done: usize,
    pub shards: usize,
    pub bytes_done: u64,
    pub bytes: u64,
}

impl Package {
    pub fn open(dir: &Path) -> PResult<Package> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let manifest = Manifest::parse(&text, &path.display().to_string())?;
        Ok(Package { dir: dir.to_path_buf(), manifest })
    }

    /// A shard's bytes, checked against the manifest's size and SHA-256.
    pub fn read_shard(&self, index: usize) -> PResult<Vec<u8>> {
        let path = self.dir.join(&self.manifest.shards[index].file);
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        verify_shard(&self.manifest, index, &bytes)?;
        Ok(bytes)
    }

    /// Check every shard.
    pub fn verify(&self) -> PResult<()> {
        (0..self.manifest.shards.len()).try_for_each(|i| self.read_shard(i).map(|_| ()))
    }

    /// A tensor as the kernels will see it (dequantised), in its logical shape's row-major order.
    pub fn read_tensor(&self, name: &str) -> PResult<Vec<f32>> {
        read_tensor(&self.manifest, name, &self.dir.join(MANIFEST).display().to_string(), &mut |i| self.read_shard(i))
    }

    /// Every tensor onto the GPU, one verified shard at a time.
    pub fn load(&self, gpu: &Gpu, progress: &mut dyn FnMut(LoadProgress)) -> PResult<HashMap<String, GpuParam>> {
        let mut out = HashMap::new();
        let total = self.manifest.total_bytes();
        let mut done = 0;
        for i in 0..self.manifest.shards.len() {
            let bytes = self.read_shard(i)?;
            upload_shard(gpu, &self.manifest, i, &bytes, &mut out)?;
            done += bytes.len() as u64;
            progress(LoadProgress { shards_done: i + 1, shards: self.manifest.shards.len(), bytes_done: done, bytes: total });
        }
        gpu.check()?;
        Ok(out)
    }
}
