//! Sharding an evaluation over several GPUs or machines (`eval --shard K/N`), and the shard results file.
//!
//! The order: the annotation file's entries in file order, bad entries and repeated ids skipped (they are
//! reported, [`super::annotations`]), then cut to the first `--limit` samples. Position `i` (0-based) of that
//! list belongs to shard `i % N`: shard K takes positions K, K + N, K + 2N, ... So the N shards partition the
//! list exactly, every shard differs from the others by at most one sample, and a scene's questions (which
//! the annotation files keep together) stay mostly consecutive within a shard.
//!
//! A shard writes its records to `RESULTS/shard-K-of-N.jsonl`: the same JSON lines as an unsharded run's
//! results file, one record per sample appended as it is scored (so a killed job keeps what it finished and a
//! rerun resumes), after one header line `{"eval_shard": {...}}` ([`ShardHeader`]) that names the shard, the
//! model (the SHA-256 of its package manifest), the annotations (the SHA-256 of the file), the settings that
//! change the answers, the number of samples over all shards and this shard's sample ids in order. A rerun
//! with other settings into the same file is refused; the merge ([`super::merge`]) uses the headers to check
//! that the shards belong together and are complete, and to put the records back into the unsharded order.
//!
//! The reference evaluator runs one shard per GPU (one process per rank over a contiguous chunk) and writes one
//! JSON array per shard; the header, the interleaved split and the checked merge are this crate's.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{BadShard, ShardError};
use super::run::Identified;

/// Shard `index` of `count` (0-based): the samples at positions `i` with `i % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = BadShard;

    /// `K/N` with whole numbers, 0 <= K < N.
    fn from_str(s: &str) -> Result<Shard, BadShard> {
        let bad = || BadShard::Syntax { arg: s.to_string() };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let num = |t: &str| if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) { t.parse::<usize>().ok() } else { None };
        let (index, count) = (num(k.trim()).ok_or_else(bad)?, num(n.trim()).ok_or_else(bad)?);
        if count == 0 {
            return Err(BadShard::NoShards { arg: s.to_string() });
        }
        if index >= count {
            return Err(BadShard::IndexTooLarge { arg: s.to_string(), count });
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether position `i` of the ordered sample list is this shard's.
    pub fn contains(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// This shard's items of the ordered list, in order.
    pub fn select<T>(&self, items: Vec<T>) -> Vec<T> {
        items.into_iter().enumerate().filter(|(i, _)| self.contains(*i)).map(|(_, t)| t).collect()
    }

    /// How many of `total` samples this shard takes.
    pub fn len_of(&self, total: usize) -> usize {
        total.saturating_sub(self.index).div_ceil(self.count)
    }

    /// The shard's results file name: `shard-K-of-N.jsonl`.
    pub fn file_name(&self) -> String {
        format!("shard-{}-of-{}.jsonl", self.index, self.count)
    }

    /// The shard's results file in the results folder.
    pub fn results_path(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }

    /// K and N from a file name `shard-K-of-N.jsonl`.
    pub fn from_file_name(name: &str) -> Option<Shard> {
        let rest = name.strip_prefix("shard-")?.strip_suffix(".jsonl")?;
        let (k, n) = rest.split_once("-of-")?;
        format!("{k}/{n}").parse().ok()
    }
}

/// The first line of a shard results file, as `{"eval_shard": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardHeader {
    /// This layout's version.
    pub format: u32,
    pub shard: Shard,
    /// `vsi`, `scanqa` or `sqa3d`.
    pub benchmark: String,
    /// The `--model` argument as given (shown, not compared: paths differ between machines).
    pub model: String,
    /// SHA-256 of the model package's `manifest.json`, which lists every shard's SHA-256.
    pub model_sha256: String,
    /// The `--annotations` path as given (shown, not compared).
    pub annotations: String,
    /// SHA-256 of the annotation file's bytes.
    pub annotations_sha256: String,
    /// The settings that change the answers or the sample list (frames, max_new_tokens, prompts, f32, limit).
    pub config: BTreeMap<String, serde_json::Value>,
    /// Samples over all shards: the ordered list's length.
    pub samples: usize,
    /// This shard's sample ids, in order.
    pub ids: Vec<String>,
}

/// This header layout's version.
pub const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct HeaderLine {
    eval_shard: ShardHeader,
}

impl ShardHeader {
    /// The header line's text (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(&HeaderLine { eval_shard: self.clone() }).expect("a header serialises")
    }

    /// Parse a header line.
    pub fn from_line(line: &str) -> Result<ShardHeader, serde_json::Error> {
        serde_json::from_str::<HeaderLine>(line).map(|h| h.eval_shard)
    }

    /// What differs between two shards' headers that must agree (everything but the shard, its ids and the
    /// paths as given), one description per field; empty when they belong to one evaluation.
    pub fn differences(&self, other: &ShardHeader) -> Vec<String> {
        let mut d = Vec::new();
        if self.format != other.format {
            d.push(format!("format: {} vs {}", self.format, other.format));
        }
        if self.benchmark != other.benchmark {
            d.push(format!("benchmark: {} vs {}", self.benchmark, other.benchmark));
        }
        if self.model_sha256 != other.model_sha256 {
            d.push(format!("model: {} ({}) vs {} ({})", self.model, short(&self.model_sha256), other.model, short(&other.model_sha256)));
        }
        if self.annotations_sha256 != other.annotations_sha256 {
            d.push(format!(
                "annotations: {} ({}) vs {} ({})",
                self.annotations,
                short(&self.annotations_sha256),
                other.annotations,
                short(&other.annotations_sha256)
            ));
        }
        let keys: std::collections::BTreeSet<&String> = self.config.keys().chain(other.config.keys()).collect();
        for k in keys {
            let v = |c: &BTreeMap<String, serde_json::Value>| c.get(k).map_or("(absent)".to_string(), |v| v.to_string());
            if self.config.get(k) != other.config.get(k) {
                d.push(format!("{k}: {} vs {}", v(&self.config), v(&other.config)));
            }
        }
        if self.shard.count != other.shard.count {
            d.push(format!("number of shards: {} vs {}", self.shard.count, other.shard.count));
        }
        if self.samples != other.samples {
            d.push(format!("samples over all shards: {} vs {}", self.samples, other.samples));
        }
        d
    }
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}

/// Whether a results-file line is a shard header (which the record readers skip).
pub fn is_header_line(line: &str) -> bool {
    line.trim_start().starts_with("{\"eval_shard\"") && ShardHeader::from_line(line).is_ok()
}

/// SHA-256 of a file's bytes, in hex.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

/// The identity of a model package: SHA-256 of its `manifest.json` (which holds every shard's SHA-256).
pub fn package_sha256(dir: &Path) -> io::Result<String> {
    file_sha256(&dir.join("manifest.json"))
}

/// Start or resume a shard results file: a missing or empty file gets `header` as its first line; an existing
/// one must start with the same header (same shard, settings and sample ids), else the run is refused with what
/// differs. The records after the header are the run's business ([`super::evaluate_with`] resumes from them).
pub fn prepare_results_file(path: &Path, header: &ShardHeader) -> Result<(), ShardError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ShardError::io(path, e)),
    };
    if text.trim().is_empty() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| ShardError::io(dir, e))?;
        }
        let mut f = OpenOptions::new().create(true).write(true).truncate(true).open(path).map_err(|e| ShardError::io(path, e))?;
        f.write_all((header.to_line() + "\n").as_bytes()).and_then(|_| f.flush()).map_err(|e| ShardError::io(path, e))?;
        return Ok(());
    }
    let first = text.lines().next().unwrap_or_default();
    let stored = ShardHeader::from_line(first).map_err(|source| ShardError::NotResultsFile { path: path.display().to_string(), source })?;
    let mut diff = stored.differences(header);
    if stored.shard != header.shard {
        diff.push(format!("shard: {} vs {}", stored.shard, header.shard));
    }
    if diff.is_empty() && stored.ids != header.ids {
        diff.push("the shard's sample ids".into());
    }
    if !diff.is_empty() {
        return Err(ShardError::OtherEvaluation { path: path.display().to_string(), differences: diff });
    }
    Ok(())
}

/// A sharded run: the shard, the results folder and the header's fields that do not depend on the samples.
#[derive(Clone, Debug)]
pub struct ShardPlan {
    pub shard: Shard,
    /// The results folder (`--results` with `--shard`).
    pub dir: PathBuf,
    pub benchmark: String,
    pub model: String,
    pub model_sha256: String,
    pub annotations: String,
    pub annotations_sha256: String,
    pub config: BTreeMap<String, serde_json::Value>,
}

impl ShardPlan {
    /// The shard's results file, `DIR/shard-K-of-N.jsonl`.
    pub fn results_path(&self) -> PathBuf {
        self.shard.results_path(&self.dir)
    }

    /// The header for the ordered sample list `samples`.
    pub fn header<S: Identified>(&self, samples: &[S]) -> ShardHeader {
        ShardHeader {
            format: FORMAT,
            shard: self.shard,
            benchmark: self.benchmark.clone(),
            model: self.model.clone(),
            model_sha256: self.model_sha256.clone(),
            annotations: self.annotations.clone(),
            annotations_sha256: self.annotations_sha256.clone(),
            config: self.config.clone(),
            samples: samples.len(),
            ids: samples.iter().enumerate().filter(|(i, _)| self.shard.contains(*i)).map(|(_, s)| s.id().to_string()).collect(),
        }
    }

    /// Take this shard's samples of the ordered list and start (or resume, after checking its header) the shard
    /// results file; evaluate the returned samples into [`ShardPlan::results_path`].
    pub fn start<S: Identified>(&self, samples: Vec<S>) -> Result<Vec<S>, ShardError> {
        prepare_results_file(&self.results_path(), &self.header(&samples))?;
        Ok(self.shard.select(samples))
    }
}
