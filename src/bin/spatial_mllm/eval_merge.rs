//! `eval-merge`: the shard results files of `eval --shard K/N` checked and merged into one table.

use std::path::PathBuf;

use clap::Args;
use spatial_mllm_web::eval::{merge_shards, shard_files};

use crate::OrExit;

#[derive(Args)]
pub struct EvalMergeArgs {
    /// Shard results files (shard-K-of-N.jsonl), or folders holding them.
    #[arg(required = true, value_name = "DIR_OR_FILE")]
    inputs: Vec<PathBuf>,
    /// Print the merged metrics as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Merge even when some samples have no result yet (they are listed and not counted).
    #[arg(long)]
    partial: bool,
}

pub fn eval_merge(args: EvalMergeArgs) {
    let files = shard_files(&args.inputs).or_exit();
    let merged = merge_shards(&files, args.partial).or_exit();
    for w in &merged.warnings {
        eprintln!("{w}");
    }
    for (shard, ids) in &merged.missing {
        eprintln!("shard {shard}: {} samples without a result, not counted: {}", ids.len(), ids.join(", "));
    }
    let h = &merged.header;
    let n = h.shard.count;
    if args.json {
        let missing: usize = merged.missing.iter().map(|(_, ids)| ids.len()).sum();
        let j = serde_json::json!({
            "benchmark": h.benchmark,
            "model": h.model,
            "model_sha256": h.model_sha256,
            "annotations": h.annotations,
            "annotations_sha256": h.annotations_sha256,
            "config": h.config,
            "shards": n,
            "files": merged.files,
            "samples": h.samples,
            "scored": merged.count(),
            "missing": missing,
            "metrics": merged.metrics_json(),
        });
        println!("{}", serde_json::to_string_pretty(&j).expect("JSON"));
    } else {
        println!("{} of {} samples merged from {n} shard{}", merged.count(), h.samples, if n == 1 { "" } else { "s" });
        print!("{}", merged.table());
    }
}
