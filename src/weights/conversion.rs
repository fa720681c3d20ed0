//! A conversion planned before any weight is read: from the checkpoint's safetensors headers and
//! config.json, which model it is (with VGGT: its structure, read from the tensors' shapes, see
//! `structure`), which upstream tensor becomes which package tensor in which format, and where
//! each part's bytes come from (a row range of one source tensor) and go (a shard, an offset). The
//! CLI executes a plan from mapped files, the browser from Range requests as the files stream;
//! both then write the same bytes.

use std::collections::HashMap;

use safetensors::tensor::Dtype;

use super::error::{PResult, PackageError};
use super::layout::{canonical, detect, ModelKind};
use super::manifest::{Manifest, ShardEntry};
use super::package_layout::{PackageLayout, ShardLayout};
use super::policy::Policy;
use super::quant::WeightFormat;
use super::shapes::{check_config, expected};
use super::source::{element_bytes, SourceFile};
use super::structure::{complete_config, Shapes};

pub const TOKENIZER: &str = "tokenizer.json";

/// One part to write: rows `rows` of source tensor `key` (file `file`, bytes `start..end`).
#[derive(Clone, Debug)]
pub struct PlannedPart {
    pub tensor: String,
    pub part: usize,
    pub shard: usize,
    pub format: WeightFormat,
    pub dtype: Dtype,
    pub rows: usize,
    pub cols: usize,
    /// Packed bytes.
    pub bytes: u64,
    pub key: String,
    pub file: usize,
    pub start: u64,
    pub end: u64,
}

pub struct ConversionPlan {
    pub kind: ModelKind,
    /// The checkpoint's config.json; with VGGT, completed by the structure its tensors show
    /// (`structure::complete_config`), as the manifest records it.
    pub config: serde_json::Value,
    pub tokenizer: Option<String>,
    pub sources: Vec<SourceFile>,
    /// In package order: shard by shard, each shard's parts in data order.
    pub parts: Vec<PlannedPart>,
    pub shards: Vec<ShardLayout>,
    layout: PackageLayout,
}

/// The architecture a config.json names, for messages.
pub fn architecture(config: &serde_json::Value) -> String {
    config
        .get("architectures")
        .and_then(|a| a.get(0))
        .or_else(|| config.get("model_type"))
        .and_then(|v| v.as_str())
        .unwrap_or("unnamed: config.json gives no architectures or model_type")
        .to_string()
}

impl ConversionPlan {
    /// `label` names the checkpoint in errors (its directory or repository id); `config` is its
    /// config.json (`{}` when it has none, as VGGT-1B's PyTorch checkpoint).
    pub fn new(label: &str, sources: Vec<SourceFile>, config: serde_json::Value, has_tokenizer: bool, policy: &Policy, max_shard: u64) -> PResult<ConversionPlan> {
        // (upstream key, file, tensor index), in key order.
        let mut keys: Vec<(&str, usize, usize)> =
            sources.iter().enumerate().flat_map(|(i, f)| f.tensors.iter().enumerate().map(move |(j, t)| (t.key.as_str(), i, j))).collect();
        keys.sort();
        let kind = detect(keys.iter().map(|k| k.0)).ok_or_else(|| PackageError::UnknownLayout {
            dir: label.into(),
            arch: architecture(&config),
            sample: keys.iter().take(5).map(|k| k.0.to_string()).collect(),
        })?;
        let tied = config.get("tie_word_embeddings").and_then(|v| v.as_bool()).unwrap_or(true);
        let mut chosen = Vec::new(); // (canonical, file, tensor index)
        for &(key, file, index) in &keys {
            let Some(name) = canonical(kind, key) else { continue };
            if name == "llm.lm_head.weight" && tied {
                continue; // the tied head is the embedding
            }
            chosen.push((name, file, index));
        }
        let config = if kind.has_vggt() {
            let shapes: Shapes = chosen.iter().map(|(n, f, i)| (n.as_str(), sources[*f].tensors[*i].shape.as_slice())).collect();
            complete_config(kind, &shapes, config, label)?
        } else {
            config
        };
        check_config(kind, &config)
            .map_err(|msg| PackageError::Structure { file: label.into(), msg: format!("config.json (with the sizes the tensors show): {msg}") })?;
        let want: HashMap<String, (Vec<usize>, bool)> = expected(kind, &config).into_iter().map(|e| (e.name, (e.shape, e.required))).collect();
        for (name, (_, required)) in &want {
            if *required && !chosen.iter().any(|(n, _, _)| n == name) {
                return Err(PackageError::MissingTensor { name: name.clone(), file: label.into() });
            }
        }
        let mut layout = PackageLayout::new(max_shard);
        let mut parts = Vec::new();
        for (name, file, index) in chosen {
            let t = &sources[file].tensors[index];
            if t.shape.contains(&0) {
                let msg = format!("tensor {} has shape {:?}, with no elements: no model has one. The file is damaged", t.key, t.shape);
                return Err(PackageError::Safetensors { file: sources[file].name.clone(), msg });
            }
            if let Some((exp, _)) = want.get(&name) {
                if *exp != t.shape {
                    return Err(PackageError::ShapeMismatch { name: t.key.clone(), expected: exp.clone(), got: t.shape.clone() });
                }
            }
            let row = element_bytes(&t.key, t.dtype)? as u64 * t.shape.iter().skip(1).product::<usize>() as u64;
            let format = policy.format(&name, &t.shape);
            for p in layout.add(&name, &t.shape, format) {
                let (r0, r1) = p.rows;
                let row = if t.shape.len() <= 1 { t.end - t.start } else { row };
                parts.push(PlannedPart {
                    tensor: name.clone(),
                    part: p.part,
                    shard: p.shard,
                    format,
                    dtype: t.dtype,
                    rows: r1 - r0,
                    cols: layout.tensors[&name].cols,
                    bytes: p.bytes,
                    key: t.key.clone(),
                    file,
                    start: t.start + r0 as u64 * row,
                    end: t.start + r1 as u64 * row,
                });
            }
        }
        let shards: Vec<ShardLayout> = (0..layout.shard_count()).map(|i| layout.close_shard(i)).collect();
        // Package order: a stable sort by shard keeps each shard's parts in data order.
        parts.sort_by_key(|p| p.shard);
        let tokenizer = has_tokenizer.then(|| TOKENIZER.to_string());
        Ok(ConversionPlan { kind, config, tokenizer, sources, parts, shards, layout })
    }

    /// Bytes of the package's shards.
    pub fn package_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.bytes).sum()
    }

    /// Bytes of the source files.
    pub fn source_bytes(&self) -> u64 {
        self.sources.iter().map(|s| s.size).sum()
    }

    /// The manifest, given each shard's SHA-256 (hex) in order.
    pub fn manifest(&self, sha256: &[String]) -> PResult<Manifest> {
        if sha256.len() != self.shards.len() {
            return Err(PackageError::BadManifest { file: "manifest.json".into(), msg: format!("{} shard hashes for {} shards", sha256.len(), self.shards.len()) });
        }
        let shards = self.shards.iter().zip(sha256).map(|(s, h)| ShardEntry { file: s.file.clone(), bytes: s.bytes, sha256: h.clone() }).collect();
        let m = self.layout.manifest(self.kind.id(), self.config.clone(), self.tokenizer.clone(), shards);
        m.validate("manifest.json")?;
        Ok(m)
    }
}
