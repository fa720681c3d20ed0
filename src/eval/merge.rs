//! Merging the shard results files of a sharded evaluation ([`super::shard`]) into one result set (native only).
//!
//! The merge checks that the files are shards of one evaluation (same benchmark, model, annotations, settings
//! and shard count, by their headers), that every shard 0..N is there once, that no sample has results in two
//! shards, and that every shard is complete (each of its samples has a record; `allow_partial` merges what is
//! there and lists what is not). The records are then put back into the unsharded order (position `i` is shard
//! `i % N`'s sample `i / N`), so the metrics are those of an unsharded run over the same samples, to the bit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::report::{qa_metrics, vsi_metrics_of, QaRecord, VsiRecord};
use super::error::ShardError;
use super::run::{parse_results, Identified};
use super::shard::{Shard, ShardHeader};

/// The merged records, in the unsharded order.
#[derive(Clone, Debug)]
pub enum MergedRecords {
    Vsi(Vec<VsiRecord>),
    Qa(Vec<QaRecord>),
}

/// A merged evaluation.
#[derive(Clone, Debug)]
pub struct Merged {
    /// Shard 0's header with `ids` replaced by the whole ordered sample list.
    pub header: ShardHeader,
    /// The shard files, by shard index.
    pub files: Vec<PathBuf>,
    pub records: MergedRecords,
    /// Samples without a record, per shard (only with `allow_partial`; else that is an error).
    pub missing: Vec<(Shard, Vec<String>)>,
    /// Unreadable or repeated lines of the files (skipped), as "FILE: line N: ...".
    pub warnings: Vec<String>,
}

impl Merged {
    /// Records merged.
    pub fn count(&self) -> usize {
        match &self.records {
            MergedRecords::Vsi(r) => r.len(),
            MergedRecords::Qa(r) => r.len(),
        }
    }

    /// The table `eval` prints for a whole run.
    pub fn table(&self) -> String {
        match &self.records {
            MergedRecords::Vsi(r) => vsi_metrics_of(r).table(),
            MergedRecords::Qa(r) => qa_metrics(r).table(),
        }
    }

    /// The metrics as JSON (the reference's `metrics_*.json` layout for VSI-Bench).
    pub fn metrics_json(&self) -> serde_json::Value {
        match &self.records {
            MergedRecords::Vsi(r) => serde_json::to_value(vsi_metrics_of(r)),
            MergedRecords::Qa(r) => serde_json::to_value(qa_metrics(r)),
        }
        .expect("metrics serialise")
    }
}

/// The shard files named by `inputs`: a folder stands for its `shard-K-of-N.jsonl` files, a file for itself.
/// Repeated paths count once.
pub fn shard_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ShardError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<(Shard, PathBuf)> = std::fs::read_dir(input)
                .map_err(|e| ShardError::io(input, e))?
                .filter_map(|e| e.ok())
                .filter_map(|e| Shard::from_file_name(&e.file_name().to_string_lossy()).map(|s| (s, e.path())))
                .collect();
            if found.is_empty() {
                return Err(ShardError::NoShardFilesIn { dir: input.display().to_string() });
            }
            found.sort();
            files.extend(found.into_iter().map(|(_, p)| p));
        } else if input.exists() {
            files.push(input.clone());
        } else {
            return Err(ShardError::NotFound { path: input.display().to_string() });
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    if files.is_empty() {
        return Err(ShardError::NoShardFiles);
    }
    Ok(files)
}

struct ShardFile {
    path: PathBuf,
    header: ShardHeader,
    text: String,
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

fn read_shard(path: &Path) -> Result<ShardFile, ShardError> {
    let text = std::fs::read_to_string(path).map_err(|e| ShardError::io(path, e))?;
    let first = text.lines().next().unwrap_or_default();
    let header = ShardHeader::from_line(first).map_err(|source| ShardError::NotShardFile { path: name(path), source })?;
    Ok(ShardFile { path: path.to_path_buf(), header, text })
}

/// Merge shard results files (see the module documentation for the checks). Errors name the problem and the
/// files.
pub fn merge_shards(files: &[PathBuf], allow_partial: bool) -> Result<Merged, ShardError> {
    if files.is_empty() {
        return Err(ShardError::NoShardFiles);
    }
    let shards = files.iter().map(|p| read_shard(p)).collect::<Result<Vec<_>, _>>()?;

    // One shard count, then one evaluation.
    let first = &shards[0];
    if let Some(other) = shards.iter().find(|s| s.header.shard.count != first.header.shard.count) {
        return Err(ShardError::MixedCounts {
            first: name(&first.path),
            first_shard: first.header.shard,
            other: name(&other.path),
            other_shard: other.header.shard,
        });
    }
    for s in &shards[1..] {
        let diff = first.header.differences(&s.header);
        if !diff.is_empty() {
            return Err(ShardError::NotOneEvaluation { first: name(&first.path), other: name(&s.path), differences: diff });
        }
    }

    // Each shard once, none missing.
    let n = first.header.shard.count;
    let mut by_index: Vec<Option<&ShardFile>> = vec![None; n];
    for s in &shards {
        let slot = &mut by_index[s.header.shard.index];
        if let Some(prev) = slot {
            return Err(ShardError::ShardTwice { shard: s.header.shard, first: name(&prev.path), second: name(&s.path) });
        }
        *slot = Some(s);
    }
    let missing: Vec<String> = by_index.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(k, _)| format!("{k}/{n}")).collect();
    if !missing.is_empty() {
        let have: Vec<String> = shards.iter().map(|s| s.header.shard.to_string()).collect();
        return Err(ShardError::MissingShards { missing, count: n, found: have });
    }
    let shards: Vec<&ShardFile> = by_index.into_iter().map(|s| s.expect("checked above")).collect();

    // The headers' sample lists: the right sizes and disjoint.
    let total = first.header.samples;
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (k, s) in shards.iter().enumerate() {
        let want = s.header.shard.len_of(total);
        if s.header.ids.len() != want {
            return Err(ShardError::WrongSampleCount { path: name(&s.path), shard: s.header.shard, listed: s.header.ids.len(), want, total });
        }
        for id in &s.header.ids {
            if let Some(j) = owner.insert(id, k) {
                return Err(ShardError::DuplicateInLists { id: id.clone(), first: name(&shards[j].path), second: name(&s.path) });
            }
        }
    }

    let (records, missing, warnings) = if first.header.benchmark == "vsi" {
        let (records, missing, warnings) = gather::<VsiRecord>(&shards, &owner, allow_partial)?;
        (MergedRecords::Vsi(records), missing, warnings)
    } else {
        let (records, missing, warnings) = gather::<QaRecord>(&shards, &owner, allow_partial)?;
        (MergedRecords::Qa(records), missing, warnings)
    };
    let mut header = first.header.clone();
    header.shard = Shard { index: 0, count: n };
    header.ids = (0..total).map(|i| shards[i % n].header.ids[i / n].clone()).collect();
    Ok(Merged { header, files: shards.iter().map(|s| s.path.clone()).collect(), records, missing, warnings })
}

type Gathered<R> = (Vec<R>, Vec<(Shard, Vec<String>)>, Vec<String>);

/// The shards' records, checked (no sample in two shards, none foreign to its shard, each shard complete unless
/// `allow_partial`), in the unsharded order.
fn gather<R: DeserializeOwned + Identified>(shards: &[&ShardFile], owner: &HashMap<&str, usize>, allow_partial: bool) -> Result<Gathered<R>, ShardError> {
    let n = shards.len();
    let mut warnings = Vec::new();
    let mut per_shard: Vec<HashMap<String, R>> = Vec::with_capacity(n);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (k, s) in shards.iter().enumerate() {
        let (records, errors) = parse_results::<R>(&s.text);
        warnings.extend(errors.iter().map(|e| format!("{}: {e} (skipped)", name(&s.path))));
        let mut map = HashMap::new();
        for r in records {
            let id = r.id().to_string();
            if let Some(j) = seen.insert(id.clone(), k) {
                return Err(ShardError::DuplicateResults { id, first: name(&shards[j].path), second: name(&s.path) });
            }
            match owner.get(id.as_str()) {
                Some(&o) if o == k => {}
                Some(&o) => {
                    return Err(ShardError::ForeignSample { path: name(&s.path), id, owner: shards[o].header.shard, shard: s.header.shard });
                }
                None => return Err(ShardError::UnknownSample { path: name(&s.path), id }),
            }
            map.insert(id, r);
        }
        per_shard.push(map);
    }
    let mut missing = Vec::new();
    for (k, s) in shards.iter().enumerate() {
        let absent: Vec<String> = s.header.ids.iter().filter(|id| !per_shard[k].contains_key(*id)).cloned().collect();
        if absent.is_empty() {
            continue;
        }
        if !allow_partial {
            return Err(ShardError::Incomplete { shard: s.header.shard, path: name(&s.path), listed: s.header.ids.len(), absent });
        }
        missing.push((s.header.shard, absent));
    }
    let total = shards[0].header.samples;
    let records = (0..total).filter_map(|i| per_shard[i % n].remove(&shards[i % n].header.ids[i / n])).collect();
    Ok((records, missing, warnings))
}
