//! Writes a model package to a directory in the layout of `package_layout`: shards through a
//! temporary file each, hashed as they are written, and the manifest last (also through a
//! temporary file), so that an interrupted write never leaves a package that looks complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{io_err, PResult, PackageError};
use super::manifest::{Manifest, ShardEntry, MANIFEST};
use super::package_layout::{PackageLayout, ShardLayout};
use super::quant::{PackedWeight, WeightFormat};

pub use super::package_layout::{matrix_dims, row_bytes};

/// One shard file being written: its header first, then its parts' bytes in data order.
pub struct ShardSink {
    path: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    hasher: Sha256,
    written: u64,
    expected: u64,
    file: String,
}

impl ShardSink {
    pub fn create(dir: &Path, shard: &ShardLayout) -> PResult<ShardSink> {
        let path = dir.join(&shard.file);
        let tmp = dir.join(format!("{}.partial", shard.file));
        let out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io_err(&tmp))?);
        let mut sink = ShardSink { path, tmp, out, hasher: Sha256::new(), written: 0, expected: shard.bytes, file: shard.file.clone() };
        sink.write(&shard.header)?;
        Ok(sink)
    }

    pub fn write(&mut self, bytes: &[u8]) -> PResult<()> {
        self.out.write_all(bytes).map_err(io_err(&self.tmp))?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Close, check the size the layout promised, and move into place.
    pub fn finish(self) -> PResult<ShardEntry> {
        let ShardSink { path, tmp, out, hasher, written, expected, file } = self;
        out.into_inner().map_err(|e| PackageError::Io { path: tmp.display().to_string(), source: e.into_error() })?.sync_all().map_err(io_err(&tmp))?;
        if written != expected {
            return Err(PackageError::Truncated { file, expected, got: written });
        }
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(ShardEntry { file, bytes: written, sha256: hex::encode(hasher.finalize()) })
    }
}

/// Write `manifest.json` through a temporary file: its presence means the package is complete.
pub fn write_manifest(dir: &Path, m: &Manifest) -> PResult<()> {
    m.validate(MANIFEST)?;
    let path = dir.join(MANIFEST);
    let tmp = dir.join(format!("{MANIFEST}.partial"));
    let text = serde_json::to_string_pretty(m).expect("manifest serialises");
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// Create `dir` for a new package, removing a stale manifest (it would describe shards about to
/// be overwritten).
pub fn prepare_dir(dir: &Path) -> PResult<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let _ = std::fs::remove_file(dir.join(MANIFEST));
    Ok(())
}

/// A package written from whole tensors in memory (random packages, tests).
pub struct PackageWriter {
    dir: PathBuf,
    model_kind: String,
    config: serde_json::Value,
    tokenizer: Option<String>,
    layout: PackageLayout,
    /// Packed parts of the open shard, in data order.
    pending: Vec<Vec<u8>>,
    shards: Vec<ShardEntry>,
}

impl PackageWriter {
    pub fn new(dir: &Path, model_kind: &str, config: serde_json::Value, max_shard: u64) -> PResult<Self> {
        prepare_dir(dir)?;
        Ok(PackageWriter {
            dir: dir.to_path_buf(),
            model_kind: model_kind.to_string(),
            config,
            tokenizer: None,
            layout: PackageLayout::new(max_shard),
            pending: Vec::new(),
            shards: Vec::new(),
        })
    }

    /// Pack and add one tensor (f32 values in row-major order of `shape`).
    pub fn add(&mut self, name: &str, shape: &[usize], data: &[f32], format: WeightFormat) -> PResult<()> {
        let (rows, cols) = matrix_dims(shape);
        assert_eq!(rows * cols, data.len(), "{name}: data and shape disagree");
        for p in self.layout.add(name, shape, format) {
            if p.shard > self.shards.len() {
                self.flush()?;
            }
            let (r0, r1) = p.rows;
            let packed = PackedWeight::pack(format, &data[r0 * cols..r1 * cols], r1 - r0, cols);
            self.pending.push(bytemuck::cast_slice(&packed.words).to_vec());
        }
        Ok(())
    }

    /// Copy a side file (the tokenizer) into the package.
    pub fn add_file(&mut self, src: &Path, name: &str) -> PResult<()> {
        let dst = self.dir.join(name);
        std::fs::copy(src, &dst).map_err(io_err(src))?;
        self.tokenizer = Some(name.to_string());
        Ok(())
    }

    /// Write the last shard and then the manifest.
    pub fn finish(mut self) -> PResult<Manifest> {
        self.flush()?;
        let m = self.layout.manifest(&self.model_kind, self.config.clone(), self.tokenizer.clone(), std::mem::take(&mut self.shards));
        write_manifest(&self.dir, &m)?;
        Ok(m)
    }

    fn flush(&mut self) -> PResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let shard = self.layout.close_shard(self.shards.len());
        let mut sink = ShardSink::create(&self.dir, &shard)?;
        for bytes in self.pending.drain(..) {
            sink.write(&bytes)?;
        }
        self.shards.push(sink.finish()?);
        Ok(())
    }
}
