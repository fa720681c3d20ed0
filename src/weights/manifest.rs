//! `manifest.json` of a model package: model kind and config, tokenizer file, where every tensor
//! lives (shard, byte offset, logical shape, format, row range of each part) and every shard's size
//! and SHA-256. Shards are safetensors files; each part is stored there as a U8 tensor of its bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{PResult, PackageError};
use super::layout::ModelKind;
use super::package_layout::{matrix_dims, packed_size};
use super::quant::WeightFormat;
use super::shapes::check_config;
use super::source::MAX_TENSOR_ELEMENTS;

/// The package format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// The binding size every WebGPU adapter guarantees.
pub const DEFAULT_SHARD_BYTES: u64 = 128 << 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    /// "spatial-mllm-v1.0", "spatial-mllm-v1.1", "qwen2.5-vl" or "vggt".
    pub model_kind: String,
    /// The checkpoint's config.json; where the model has VGGT, its `vggt_config` holds every size
    /// of VGGT as the converter read it from the tensors (`weights::structure`). Packages written
    /// before may lack keys (`VggtDims::from_config` defaults them as those packages were built).
    pub config: serde_json::Value,
    /// The tokenizer file inside the package, if the checkpoint had one.
    pub tokenizer: Option<String>,
    pub tensors: BTreeMap<String, TensorEntry>,
    pub shards: Vec<ShardEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TensorEntry {
    /// Logical shape as in the checkpoint.
    pub shape: Vec<usize>,
    /// Storage: a [rows, cols] matrix (rows = shape[0], cols = the rest; 1-D: one row).
    pub rows: usize,
    pub cols: usize,
    pub format: WeightFormat,
    /// Row ranges stored separately so that no part exceeds a shard (and a binding).
    pub parts: Vec<PartEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartEntry {
    pub shard: usize,
    /// Absolute byte offset in the shard file and byte length.
    pub offset: u64,
    pub bytes: u64,
    pub row_start: usize,
    pub row_end: usize,
    /// Word offset of the block scales inside the part (quantised formats).
    pub scale_offset: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardEntry {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn parse(text: &str, file: &str) -> PResult<Manifest> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| PackageError::BadManifest { file: file.into(), msg: e.to_string() })?;
        let found = v.get("format_version").and_then(|x| x.as_u64()).unwrap_or(0) as u32;
        if found > FORMAT_VERSION {
            return Err(PackageError::NewerFormat { file: file.into(), found, supported: FORMAT_VERSION });
        }
        let m: Manifest = serde_json::from_value(v).map_err(|e| PackageError::BadManifest { file: file.into(), msg: e.to_string() })?;
        m.validate(file)?;
        Ok(m)
    }

    /// Internal consistency: the config's sizes are plausible for the model kind, each tensor's
    /// storage matrix fits its shape, and its parts cover the rows in order, each exactly the packed
    /// size of its rows, inside a listed shard. What passes can be read and unpacked without a
    /// bounds check failing or an allocation larger than the shards themselves.
    pub fn validate(&self, file: &str) -> PResult<()> {
        let bad = |msg: String| Err(PackageError::BadManifest { file: file.into(), msg });
        if let Some(kind) = ModelKind::from_id(&self.model_kind) {
            if let Err(msg) = check_config(kind, &self.config) {
                return bad(format!("config: {msg}"));
            }
        }
        for (name, t) in &self.tensors {
            let elements = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64)).filter(|&n| n <= MAX_TENSOR_ELEMENTS);
            if elements.is_none() || (t.rows, t.cols) != matrix_dims(&t.shape) {
                return bad(format!("tensor {name}: shape {:?} is over {MAX_TENSOR_ELEMENTS} elements or not stored as {} x {}", t.shape, t.rows, t.cols));
            }
            let mut next = 0;
            for p in &t.parts {
                if p.shard >= self.shards.len() {
                    return bad(format!("tensor {name} points at shard {} of {}", p.shard, self.shards.len()));
                }
                let size = (p.row_end > p.row_start && p.row_end <= t.rows).then(|| packed_size(t.format, p.row_end - p.row_start, t.cols));
                let inside = p.offset.checked_add(p.bytes).is_some_and(|end| end <= self.shards[p.shard].bytes);
                if p.row_start != next || size != Some((p.bytes, p.scale_offset)) || !inside {
                    return bad(format!("tensor {name} has an inconsistent part {p:?}"));
                }
                next = p.row_end;
            }
            if next != t.rows {
                return bad(format!("tensor {name}: parts cover {next} of {} rows", t.rows));
            }
        }
        Ok(())
    }

    pub fn total_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.bytes).sum()
    }
}
