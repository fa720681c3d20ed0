//! `eval --shard K/N` and `eval-merge`: the split partitions the ordered samples exactly, a shard file resumes
//! and refuses another evaluation's settings, the merged shards give the unsharded run's table and metrics to
//! the bit, and the merge names what is wrong (a missing shard, mixed shard counts, a sample in two shards, an
//! incomplete shard, another evaluation's shard). The library part uses a fake answer function (as
//! tests/eval.rs); the command-line part runs the tiny Spatial-MLLM v1.1 fixture (as tests/cli.rs).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use spatial_mllm_web::eval::annotations::parse_vsi_annotations;
use spatial_mllm_web::eval::prompt::PromptStyle;
use spatial_mllm_web::eval::{self, merge_shards, shard_files, MergedRecords, Sample, Shard, ShardPlan};

// ------------------------------------------------------------------------------------------------ the split

#[test]
fn shard_argument_parsing() {
    assert_eq!("0/3".parse::<Shard>(), Ok(Shard { index: 0, count: 3 }));
    assert_eq!("7/8".parse::<Shard>(), Ok(Shard { index: 7, count: 8 }));
    assert_eq!("0/1".parse::<Shard>(), Ok(Shard { index: 0, count: 1 }));
    let err = |s: &str| s.parse::<Shard>().unwrap_err().to_string();
    assert!(err("3/3").contains("must be below N (0 to 2"), "{}", err("3/3"));
    assert!(err("0/0").contains("at least 1"), "{}", err("0/0"));
    for bad in ["a/b", "1", "", "/3", "1/", "-1/3", "1/3/4", "1.0/3", "+1/3"] {
        assert!(err(bad).contains("expected K/N"), "{bad:?}: {}", err(bad));
    }
    assert_eq!(Shard::from_file_name("shard-2-of-8.jsonl"), Some(Shard { index: 2, count: 8 }));
    assert_eq!(Shard { index: 2, count: 8 }.file_name(), "shard-2-of-8.jsonl");
    assert_eq!(Shard::from_file_name("shard-8-of-8.jsonl"), None);
    assert_eq!(Shard::from_file_name("results.jsonl"), None);
}

#[test]
fn shards_partition_the_samples_exactly() {
    for total in 0..=13 {
        let all: Vec<usize> = (0..total).collect();
        for count in 1..=6 {
            let mut seen = vec![0usize; total];
            for index in 0..count {
                let s = Shard { index, count };
                let mine = s.select(all.clone());
                assert_eq!(mine.len(), s.len_of(total), "{s} of {total}");
                assert!(mine.windows(2).all(|w| w[1] - w[0] == count), "every N-th, in order");
                assert!(mine.iter().all(|&i| i % count == index));
                for i in mine {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{total} samples over {count} shards: {seen:?}");
        }
    }
}

// ------------------------------------------------------------------------------------------------ fake model runs

const ANNOTATIONS: &str = r#"{"id": 10, "dataset": "scannet", "scene_name": "s0", "question_type": "object_counting", "question": "How many chair(s) are in this room?", "ground_truth": "4"}
{"id": 11, "dataset": "scannet", "scene_name": "s0", "question_type": "object_rel_direction_easy", "question": "Is the bed to the left or right of the desk?", "options": ["A. left", "B. right"], "ground_truth": "A"}
{"id": 12, "dataset": "scannet", "scene_name": "s1", "question_type": "object_rel_direction_medium", "question": "Where is the door?", "options": ["A. left", "B. right", "C. back"], "ground_truth": "C"}
{"id": 13, "dataset": "scannet", "scene_name": "s1", "question_type": "room_size_estimation", "question": "How big is this room (in square meters)?", "ground_truth": "20"}
{"id": 14, "dataset": "scannet", "scene_name": "s1", "question_type": "route_planning", "question": "Which route?", "options": ["A. Turn Left", "B. Turn Right"], "ground_truth": "B"}
{"id": 15, "dataset": "scannet", "scene_name": "s2", "question_type": "object_abs_distance", "question": "How far is the sofa from the door?", "ground_truth": "1.7"}
{"id": 16, "dataset": "scannet", "scene_name": "s2", "question_type": "object_size_estimation", "question": "How long is the bed?", "ground_truth": "203"}
"#;

fn samples() -> Vec<Sample> {
    let parsed = parse_vsi_annotations(ANNOTATIONS);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.items
}

/// Replies chosen so that the means have rounding to get wrong: MRA values that are not exact in binary.
fn reply(s: &Sample, _prompt: &str) -> Result<String, String> {
    Ok(match s.id.as_str() {
        "10" => "5",
        "11" => "A",
        "12" => "B",
        "13" => "21.3",
        "14" => "B",
        "15" => "1.9",
        "16" => "188",
        _ => unreachable!(),
    }
    .to_string())
}

fn plan(dir: &Path, shard: Shard) -> ShardPlan {
    ShardPlan {
        shard,
        dir: dir.to_path_buf(),
        benchmark: "vsi".into(),
        model: "pkg/".into(),
        model_sha256: "ab".repeat(32),
        annotations: "vsi.jsonl".into(),
        annotations_sha256: "cd".repeat(32),
        config: BTreeMap::from([("frames".to_string(), 16.into()), ("prompts".to_string(), "v1.1".into())]),
    }
}

/// Run one shard with the fake model; the ids it evaluated.
fn run_shard(p: &ShardPlan, all: &[Sample]) -> Vec<String> {
    let mine = p.start(all.to_vec()).unwrap();
    let s = eval::evaluate_with(&mine, PromptStyle::V1_1, reply, &p.results_path()).unwrap();
    assert!(s.failures.is_empty() && s.results_errors.is_empty(), "{:?} {:?}", s.failures, s.results_errors);
    s.records.iter().map(|r| r.id.clone()).collect()
}

fn sharded(dir: &Path, count: usize) -> Vec<PathBuf> {
    let all = samples();
    (0..count)
        .map(|index| {
            let p = plan(dir, Shard { index, count });
            run_shard(&p, &all);
            p.results_path()
        })
        .collect()
}

#[test]
fn merged_shards_equal_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let all = samples();
    let whole = eval::evaluate_with(&all, PromptStyle::V1_1, reply, &tmp.path().join("whole.jsonl")).unwrap();

    let dir = tmp.path().join("shards");
    let mut evaluated: Vec<Vec<String>> = Vec::new();
    for index in 0..3 {
        evaluated.push(run_shard(&plan(&dir, Shard { index, count: 3 }), &all));
    }
    assert_eq!(evaluated, [vec!["10", "13", "16"], vec!["11", "14"], vec!["12", "15"]]);
    // Each file: the header, then one record per sample.
    let text = std::fs::read_to_string(dir.join("shard-1-of-3.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.starts_with("{\"eval_shard\":"), "{text}");
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["eval_shard"]["shard"], serde_json::json!({"index": 1, "count": 3}));
    assert_eq!(header["eval_shard"]["samples"], 7);
    assert_eq!(header["eval_shard"]["ids"], serde_json::json!(["11", "14"]));

    let files = shard_files(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(files.len(), 3);
    let merged = merge_shards(&files, false).unwrap();
    assert!(merged.warnings.is_empty() && merged.missing.is_empty());
    assert_eq!(merged.header.ids, ["10", "11", "12", "13", "14", "15", "16"]);
    let MergedRecords::Vsi(records) = &merged.records else { panic!("VSI-Bench records") };
    assert_eq!(records, &whole.records, "the unsharded order, the same records");
    assert_eq!(merged.table(), whole.metrics.table());
    assert_eq!(merged.metrics_json(), serde_json::to_value(&whole.metrics).unwrap(), "to the bit");
    // The stored records read back as an unsharded results file would (the header line is skipped).
    let (m, errors) = eval::metrics_from_results_file(&files[0]).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(m.count(), 3);

    // Files named one by one, in any order, and a folder named twice, merge the same.
    let again = merge_shards(&shard_files(&[files[2].clone(), dir.clone(), files[0].clone()]).unwrap(), false).unwrap();
    assert_eq!(again.table(), whole.metrics.table());
}

#[test]
fn a_shard_resumes_and_refuses_another_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let all = samples();
    let p = plan(tmp.path(), Shard { index: 0, count: 2 });
    let path = p.results_path();
    // Killed after its first sample: the header and one record.
    let mine = p.start(all.clone()).unwrap();
    eval::evaluate_with(&mine[..1], PromptStyle::V1_1, reply, &path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    // The rerun asks only the rest.
    let mut asked = Vec::new();
    let mine = p.start(all.clone()).unwrap();
    let s = eval::evaluate_with(
        &mine,
        PromptStyle::V1_1,
        |s, q| {
            asked.push(s.id.clone());
            reply(s, q)
        },
        &path,
    )
    .unwrap();
    assert_eq!(asked, ["12", "14", "16"]);
    assert_eq!((s.evaluated, s.resumed), (3, 1));
    assert!(s.results_errors.is_empty(), "the header is not a bad line: {:?}", s.results_errors);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 5);

    // Other settings, another model or another sample list: refused, naming what differs.
    let mut other = plan(tmp.path(), Shard { index: 0, count: 2 });
    other.config.insert("frames".into(), 8.into());
    let e = other.start(all.clone()).unwrap_err().to_string();
    assert!(e.contains("written by another evaluation") && e.contains("frames: 16 vs 8"), "{e}");
    let e = p.start(all[..5].to_vec()).unwrap_err().to_string();
    assert!(e.contains("samples over all shards: 7 vs 5"), "{e}");
    let mut other = plan(tmp.path(), Shard { index: 0, count: 2 });
    other.model_sha256 = "ef".repeat(32);
    let e = other.start(all.clone()).unwrap_err().to_string();
    assert!(e.contains("model:"), "{e}");
    // A plain results file in the shard's place.
    std::fs::write(&path, "{\"id\": \"10\"}\n").unwrap();
    let e = p.start(all).unwrap_err().to_string();
    assert!(e.contains("not a shard results file"), "{e}");
}

#[test]
fn scanqa_and_sqa3d_shards_merge_too() {
    let text = r#"{"id": 1, "conversations": [{"from": "human", "value": "Q1"}, {"from": "gpt", "value": "left"}], "metadata": {"question_type": "which"}}
{"id": 2, "conversations": [{"from": "human", "value": "Q2"}, {"from": "gpt", "value": "two"}], "metadata": {"question_type": "how"}}
{"id": 3, "conversations": [{"from": "human", "value": "Q3"}, {"from": "gpt", "value": "yes"}], "metadata": {"question_type": "is"}}
"#;
    let all = eval::parse_qa_annotations(text, Some(eval::QaBenchmark::Sqa3d)).items;
    let answer = |s: &eval::QaSample, _: &str| -> Result<String, String> { Ok(if s.id == "2" { "2".into() } else { "no".into() }) };
    let tmp = tempfile::tempdir().unwrap();
    let whole = eval::evaluate_qa(&all, answer, &tmp.path().join("whole.jsonl")).unwrap();
    for index in 0..2 {
        let mut p = plan(&tmp.path().join("shards"), Shard { index, count: 2 });
        p.benchmark = "sqa3d".into();
        let mine = p.start(all.clone()).unwrap();
        eval::evaluate_qa(&mine, answer, &p.results_path()).unwrap();
    }
    let merged = merge_shards(&shard_files(&[tmp.path().join("shards")]).unwrap(), false).unwrap();
    let MergedRecords::Qa(records) = &merged.records else { panic!("QA records") };
    assert_eq!(records, &whole.records);
    assert_eq!(merged.table(), whole.metrics.table());
}

fn merge_err(files: &[PathBuf]) -> String {
    merge_shards(files, false).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn merge_names_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let files = sharded(&dir, 3);

    // A missing shard.
    let e = merge_err(&files[..2]);
    assert!(e.contains("missing shard 2/3") && e.contains("found 0/3, 1/3"), "{e}");
    let e = merge_err(&files[1..]);
    assert!(e.contains("missing shard 0/3"), "{e}");

    // Mixed shard counts.
    let four = sharded(&tmp.path().join("b"), 4);
    let e = merge_err(&[files[0].clone(), files[1].clone(), files[2].clone(), four[3].clone()]);
    assert!(e.contains("mixed shard counts") && e.contains("0/3") && e.contains("3/4"), "{e}");

    // The same shard twice (a copy elsewhere).
    let copy = tmp.path().join("shard-1-of-3.jsonl");
    std::fs::copy(&files[1], &copy).unwrap();
    let e = merge_err(&[files[0].clone(), files[1].clone(), copy, files[2].clone()]);
    assert!(e.contains("shard 1/3 given twice"), "{e}");

    // Another evaluation's shard (other settings).
    let c = tmp.path().join("c");
    let mut p = plan(&c, Shard { index: 2, count: 3 });
    p.config.insert("prompts".into(), "v1.0".into());
    run_shard(&p, &samples());
    let e = merge_err(&[files[0].clone(), files[1].clone(), p.results_path()]);
    assert!(e.contains("not shards of one evaluation") && e.contains("prompts: \"v1.1\" vs \"v1.0\""), "{e}");

    // A sample with results in two shards.
    let d = tmp.path().join("d");
    let dup = sharded(&d, 3);
    let line0 = std::fs::read_to_string(&dup[0]).unwrap().lines().nth(1).unwrap().to_string();
    let mut text1 = std::fs::read_to_string(&dup[1]).unwrap();
    text1 += &(line0 + "\n");
    std::fs::write(&dup[1], text1).unwrap();
    let e = merge_err(&dup);
    assert!(e.contains("duplicate sample \"10\"") && e.contains("shard-0-of-3.jsonl") && e.contains("shard-1-of-3.jsonl"), "{e}");

    // An incomplete shard: an error naming the samples, or with `allow_partial` a merge of what is there.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let cut: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(&files[0], cut.join("\n") + "\n").unwrap();
    let e = merge_err(&files);
    assert!(e.contains("shard 0/3") && e.contains("incomplete: 1 of its 3 samples have no result (16)") && e.contains("--partial"), "{e}");
    let partial = merge_shards(&files, true).unwrap();
    assert_eq!(partial.missing, [(Shard { index: 0, count: 3 }, vec!["16".to_string()])]);
    assert_eq!(partial.count(), 6);

    // Not a shard file; a folder without shard files.
    let plain = tmp.path().join("results.jsonl");
    std::fs::write(&plain, "{\"id\": \"10\"}\n").unwrap();
    assert!(merge_err(&[plain]).contains("not a shard results file"));
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(shard_files(&[empty]).unwrap_err().to_string().contains("no shard results files"));
}

// ------------------------------------------------------------------------------------------------ command line

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spatial-mllm"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The table part of `eval` / `eval-merge` output (after the first line, which says what was run or merged).
fn table(stdout: &str) -> String {
    stdout.lines().skip(1).map(|l| format!("{l}\n")).collect()
}

/// The tiny fixture over 3 samples: two shards and the unsharded run give the same table; bad --shard
/// values and a --results file are refused before any work; eval-merge names a missing shard.
#[test]
fn cli_shards_merge_to_the_unsharded_table() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spatial-mllm-v1.1");
    let (code, _, err) = run(cli().args(["convert", fixture.to_str().unwrap(), pkg.to_str().unwrap(), "--policy", "=f32"]));
    assert_eq!(code, Some(0), "convert: {err}");
    let videos = tmp.path().join("videos");
    common::scannet_videos(&videos);
    let ann = tmp.path().join("vsi.jsonl");
    std::fs::write(
        &ann,
        r#"{"id": 1, "dataset": "scannet", "scene_name": "scene0001_00", "question_type": "object_counting", "question": "How many chair(s) are in this room?", "ground_truth": "2"}
{"id": 2, "dataset": "scannet", "scene_name": "scene0001_00", "question_type": "object_rel_distance", "question": "Which is closest to the bed?", "options": ["A. desk", "B. door"], "ground_truth": "A"}
{"id": 3, "dataset": "scannet", "scene_name": "scene0002_00", "question_type": "object_abs_distance", "question": "How far is the sofa from the door?", "ground_truth": "1.5"}
"#,
    )
    .unwrap();
    let eval = |results: &Path, extra: &[&str]| {
        let mut c = cli();
        c.args(["eval", "--model", pkg.to_str().unwrap(), "--annotations", ann.to_str().unwrap(), "--videos", videos.to_str().unwrap()]);
        c.args(["--results", results.to_str().unwrap(), "--frames", "4", "--max-new-tokens", "4"]).args(extra);
        run(&mut c)
    };
    let dir = tmp.path().join("shards");

    // Refused at once, with exit code 2 (bad input).
    for (bad, want) in [("3/3", "must be below N"), ("0/0", "at least 1"), ("a/b", "expected K/N")] {
        let (code, _, err) = eval(&dir, &["--shard", bad]);
        assert_eq!(code, Some(2), "{bad}: {err}");
        assert!(err.contains(want), "{bad}: {err}");
    }
    let (code, _, err) = eval(&ann, &["--shard", "0/2"]);
    assert!(code == Some(2) && err.contains("names a folder"), "{err}");
    assert!(!dir.exists(), "nothing written");

    let (code, whole, err) = eval(&tmp.path().join("whole.jsonl"), &[]);
    assert_eq!(code, Some(0), "{err}");
    println!("{whole}");
    for k in 0..2 {
        let (code, out, err) = eval(&dir, &["--shard", &format!("{k}/2")]);
        assert_eq!(code, Some(0), "{err}");
        println!("{out}");
        assert!(out.contains(&format!("{} evaluated, 0 resumed", 2 - k)), "{out}");
    }
    let ids = |k: usize| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join(format!("shard-{k}-of-2.jsonl"))).unwrap();
        text.lines().skip(1).map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!((ids(0), ids(1)), (vec!["1".to_string(), "3".to_string()], vec!["2".to_string()]));
    // The shards' records are the unsharded run's (the same replies, scores and prompts).
    let records =
        |text: String| -> Vec<serde_json::Value> { text.lines().filter(|l| !l.starts_with("{\"eval_shard\"")).map(|l| serde_json::from_str(l).unwrap()).collect() };
    let mut sharded: Vec<serde_json::Value> = (0..2).flat_map(|k| records(std::fs::read_to_string(dir.join(format!("shard-{k}-of-2.jsonl"))).unwrap())).collect();
    sharded.sort_by_key(|r| r["id"].as_str().unwrap().to_string());
    assert_eq!(sharded, records(std::fs::read_to_string(tmp.path().join("whole.jsonl")).unwrap()));
    // A rerun of a finished shard resumes everything.
    let (_, out, _) = eval(&dir, &["--shard", "1/2"]);
    assert!(out.contains("0 evaluated, 1 resumed"), "{out}");

    let (code, merged, err) = run(cli().args(["eval-merge", dir.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    println!("{merged}");
    assert!(merged.starts_with("3 of 3 samples merged from 2 shards"), "{merged}");
    assert_eq!(table(&merged), table(&whole), "the merged table is the unsharded run's");
    let (code, json, _) = run(cli().args(["eval-merge", "--json", dir.to_str().unwrap()]));
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(code == Some(0) && j["shards"] == 2 && j["scored"] == 3 && j["metrics"]["all"]["micro"].is_number(), "{json}");

    let (code, _, err) = run(cli().args(["eval-merge", dir.join("shard-1-of-2.jsonl").to_str().unwrap()]));
    assert!(code == Some(2) && err.contains("missing shard 0/2"), "{err}");
}
