//! Errors of the sharded evaluation (native only): a bad `--shard` value, a shard results file that belongs
//! to another evaluation or is no shard file at all, and what the merge finds wrong with a set of shard files
//! (mixed evaluations, a shard missing or given twice, a sample in two shards). Each message names the files
//! and says what to do.

use std::fmt::Write as _;

use super::shard::Shard;

/// A `--shard K/N` value that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadShard {
    #[error("--shard {arg:?}: expected K/N, shard K (counting from 0) of N, e.g. 0/8")]
    Syntax { arg: String },
    #[error("--shard {arg}: N (the number of shards) must be at least 1")]
    NoShards { arg: String },
    #[error("--shard {arg}: K counts from 0 and must be below N (0 to {} for {count} shards)", .count - 1)]
    IndexTooLarge { arg: String, count: usize },
}

/// What is wrong with a shard results file or a set of them.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// Reading or writing a file or folder.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// `eval --shard` found a file in its results file's place that does not start with a shard header.
    #[error("{path}: not a shard results file (its first line is not an {{\"eval_shard\": ...}} header: {source}); remove it or choose another --results folder")]
    NotResultsFile { path: String, source: serde_json::Error },
    /// `eval --shard` found its results file written with other settings; one description per field that differs.
    #[error("{path} was written by another evaluation (stored vs now: {}); remove it or choose another --results folder", .differences.join("; "))]
    OtherEvaluation { path: String, differences: Vec<String> },
    /// The merge was given a file that does not start with a shard header.
    #[error("{path}: not a shard results file (the first line is not the {{\"eval_shard\": ...}} header that `eval --shard` writes: {source})")]
    NotShardFile { path: String, source: serde_json::Error },
    #[error("{dir}: no shard results files (shard-K-of-N.jsonl) in this folder")]
    NoShardFilesIn { dir: String },
    #[error("{path}: no such file or folder")]
    NotFound { path: String },
    #[error("no shard results files given")]
    NoShardFiles,
    #[error("mixed shard counts: {first} is shard {first_shard} but {other} is shard {other_shard}; merge the files of one --shard K/N split")]
    MixedCounts { first: String, first_shard: Shard, other: String, other_shard: Shard },
    /// Two shard files of different evaluations; one description per field that differs.
    #[error("{first} and {other} are not shards of one evaluation ({})", .differences.join("; "))]
    NotOneEvaluation { first: String, other: String, differences: Vec<String> },
    #[error("shard {shard} given twice: {first} and {second}")]
    ShardTwice { shard: Shard, first: String, second: String },
    /// Shards `missing` (as `K/N`) of `count` have no file; `found` are those given.
    #[error("missing shard{} {} of {count} (found {}): run the missing ones or name their files", plural(.missing.len()), .missing.join(", "), .found.join(", "))]
    MissingShards { missing: Vec<String>, count: usize, found: Vec<String> },
    #[error("{path}: shard {shard} lists {listed} samples, but {want} of {total} belong to it")]
    WrongSampleCount { path: String, shard: Shard, listed: usize, want: usize, total: usize },
    #[error("duplicate sample {id:?}: in the sample lists of both {first} and {second}")]
    DuplicateInLists { id: String, first: String, second: String },
    #[error("duplicate sample {id:?}: it has results in both {first} and {second}")]
    DuplicateResults { id: String, first: String, second: String },
    #[error("{path}: sample {id:?} belongs to shard {owner}, not {shard}")]
    ForeignSample { path: String, id: String, owner: Shard, shard: Shard },
    #[error("{path}: sample {id:?} is not in the evaluation's sample list")]
    UnknownSample { path: String, id: String },
    /// A shard whose samples `absent` have no result (and `--partial` was not given).
    #[error("shard {shard} ({path}) is incomplete: {} of its {listed} samples have no result ({}); rerun the shard (it resumes) or merge with --partial", .absent.len(), first_ids(.absent))]
    Incomplete { shard: Shard, path: String, listed: usize, absent: Vec<String> },
}

impl ShardError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> ShardError {
        ShardError::Io { path: path.display().to_string(), source }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The first five ids, then ", ..." when there are more.
fn first_ids(ids: &[String]) -> String {
    let mut s = ids.iter().take(5).map(String::as_str).collect::<Vec<_>>().join(", ");
    if ids.len() > 5 {
        let _ = write!(s, ", ...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_what_they_were() {
        let e = ShardError::MissingShards { missing: vec!["1/3".into()], count: 3, found: vec!["0/3".into(), "2/3".into()] };
        assert_eq!(e.to_string(), "missing shard 1/3 of 3 (found 0/3, 2/3): run the missing ones or name their files");
        let ids: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        let e = ShardError::Incomplete { shard: Shard { index: 0, count: 2 }, path: "a".into(), listed: 9, absent: ids };
        assert_eq!(
            e.to_string(),
            "shard 0/2 (a) is incomplete: 7 of its 9 samples have no result (0, 1, 2, 3, 4, ...); rerun the shard (it resumes) or merge with --partial"
        );
        assert_eq!(BadShard::IndexTooLarge { arg: "3/3".into(), count: 3 }.to_string(), "--shard 3/3: K counts from 0 and must be below N (0 to 2 for 3 shards)");
    }
}
