//! Writes a model package: tensors packed in their formats, split by rows so that no part
//! exceeds a shard, shards written as safetensors (U8 tensors of the packed bytes) with their
//! SHA-256, and the manifest last (through a temporary file), so that an interrupted conversion
//! never leaves a package that looks complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use sha2::{Digest, Sha256};

use super::error::{io_err, PResult, PackageError};
use super::manifest::{Manifest, PartEntry, ShardEntry, TensorEntry, FORMAT_VERSION, MANIFEST};
use super::quant::{padded_cols, PackedWeight, WeightFormat, BLOCK};

/// Room kept in each shard for its safetensors header.
const HEADER_SLACK: u64 = 64 << 10;

pub struct PackageWriter {
    dir: PathBuf,
    max_shard: u64,
    manifest: Manifest,
    /// Parts waiting for the current shard: (tensor name, part index, bytes).
    pending: Vec<(String, usize, Vec<u8>)>,
    pending_bytes: u64,
}

/// [rows, cols] of the storage matrix of a tensor of this shape.
pub fn matrix_dims(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (1, shape[0]),
        _ => (shape[0], shape[1..].iter().product()),
    }
}

/// Packed bytes of one row.
pub fn row_bytes(format: WeightFormat, cols: usize) -> u64 {
    let kp = padded_cols(cols) as u64;
    let blocks = kp / BLOCK as u64;
    match format {
        WeightFormat::F32 => kp * 4,
        WeightFormat::F16 => kp * 2,
        WeightFormat::Q8 => blocks * 34,
        WeightFormat::Q4 => blocks * 18,
    }
}

impl PackageWriter {
    pub fn new(dir: &Path, model_kind: &str, config: serde_json::Value, max_shard: u64) -> PResult<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        // A stale manifest would describe shards about to be overwritten.
        let _ = std::fs::remove_file(dir.join(MANIFEST));
        Ok(PackageWriter {
            dir: dir.to_path_buf(),
            max_shard: max_shard.max(HEADER_SLACK * 2),
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                model_kind: model_kind.to_string(),
                config,
                tokenizer: None,
                tensors: BTreeMap::new(),
                shards: Vec::new(),
            },
            pending: Vec::new(),
            pending_bytes: 0,
        })
    }

    /// Pack and add one tensor (f32 values in row-major order of `shape`).
    pub fn add(&mut self, name: &str, shape: &[usize], data: &[f32], format: WeightFormat) -> PResult<()> {
        let (rows, cols) = matrix_dims(shape);
        assert_eq!(rows * cols, data.len(), "{name}: data and shape disagree");
        let per_part = ((self.max_shard - HEADER_SLACK) / row_bytes(format, cols).max(1)).max(1) as usize;
        // Parts start at even rows where they can: f16 activations are copied in u32 words, so a
        // split lm_head's logits need even row offsets (see TextModel::logits).
        let per_part = if per_part > 1 { per_part & !1 } else { per_part };
        self.manifest
            .tensors
            .insert(name.to_string(), TensorEntry { shape: shape.to_vec(), rows, cols, format, parts: Vec::new() });
        let mut r0 = 0;
        while r0 < rows {
            let r1 = (r0 + per_part).min(rows);
            let packed = PackedWeight::pack(format, &data[r0 * cols..r1 * cols], r1 - r0, cols);
            let bytes: Vec<u8> = bytemuck::cast_slice(&packed.words).to_vec();
            if self.pending_bytes + bytes.len() as u64 + HEADER_SLACK > self.max_shard {
                self.flush()?;
            }
            let parts = &mut self.manifest.tensors.get_mut(name).expect("inserted above").parts;
            parts.push(PartEntry {
                shard: self.manifest.shards.len(),
                offset: 0, // known once the shard is written
                bytes: bytes.len() as u64,
                row_start: r0,
                row_end: r1,
                scale_offset: packed.scale_offset,
            });
            let part = parts.len() - 1;
            self.pending_bytes += bytes.len() as u64;
            self.pending.push((name.to_string(), part, bytes));
            r0 = r1;
        }
        Ok(())
    }

    /// Copy a side file (the tokenizer) into the package.
    pub fn add_file(&mut self, src: &Path, name: &str) -> PResult<()> {
        let dst = self.dir.join(name);
        std::fs::copy(src, &dst).map_err(io_err(src))?;
        self.manifest.tokenizer = Some(name.to_string());
        Ok(())
    }

    /// Write the last shard and then the manifest.
    pub fn finish(mut self) -> PResult<Manifest> {
        self.flush()?;
        self.manifest.validate(MANIFEST)?;
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(format!("{MANIFEST}.partial"));
        let text = serde_json::to_string_pretty(&self.manifest).expect("manifest serialises");
        std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(self.manifest)
    }

    fn flush(&mut self) -> PResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let index = self.manifest.shards.len();
        let file = format!("shard-{index:05}.safetensors");
        let key = |name: &str, part: usize| format!("{name}#{part}");
        let views: Vec<(String, TensorView)> = self
            .pending
            .iter()
            .map(|(n, p, b)| (key(n, *p), TensorView::new(Dtype::U8, vec![b.len()], b).expect("U8 view")))
            .collect();
        let bytes = safetensors::serialize(views, None)
            .map_err(|e| PackageError::Safetensors { file: file.clone(), msg: e.to_string() })?;
        let (header_len, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| PackageError::Safetensors { file: file.clone(), msg: e.to_string() })?;
        let data_start = 8 + header_len as u64;
        for (name, part, _) in &self.pending {
            let info = meta.info(&key(name, *part)).expect("just written");
            let t = self.manifest.tensors.get_mut(name).expect("queued parts belong to listed tensors");
            t.parts[*part].offset = data_start + info.data_offsets.0 as u64;
        }
        let path = self.dir.join(&file);
        let tmp = self.dir.join(format!("{file}.partial"));
        std::fs::write(&tmp, &bytes).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        self.manifest.shards.push(ShardEntry { file, bytes: bytes.len() as u64, sha256: hex::encode(Sha256::digest(&bytes)) });
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }
}
