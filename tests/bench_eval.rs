//! `bench eval` (evaluation throughput, VSI-Bench simulated) on the tiny Spatial-MLLM v1.1 fixture:
//! the command's table counts the questions asked and the encodings (one per video, not per
//! question) and gives a positive rate next to the upstream figure; the library run behind it
//! encodes each video once and prefills only a later question's own tokens (the visual block comes
//! from the session's cache); a bad frame size is refused with exit code 2 (bad input).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use spatial_mllm_web::bench::eval::{self as eval_bench, EvalBench};
use spatial_mllm_web::eval::PromptStyle;
use spatial_mllm_web::native::answer::load_model;
use spatial_mllm_web::weights::convert::{convert, ConvertOptions};
use spatial_mllm_web::weights::policy::Policy;

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spatial-mllm"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

/// The v1.1 fixture as an f32 package (it carries the fixture's tokenizer).
fn package(dir: &Path) -> PathBuf {
    let dst = dir.join("pkg");
    let opts = ConvertOptions { policy: Policy::parse("=f32").unwrap(), max_shard: 128 << 20 };
    convert(&common::fixture_dir("spatial-mllm-v1.1"), &dst, &opts, &mut |_| {}).unwrap();
    dst
}

/// The cells of the table row after the header that starts with `| {first} |`.
fn row_after(stdout: &str, first: &str) -> Vec<String> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with(&format!("| {first} |")));
    let header = lines.next().unwrap_or_else(|| panic!("no table starting with {first:?}:\n{stdout}"));
    let row = lines.nth(1).unwrap_or_else(|| panic!("no row under {header}"));
    row.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect()
}

fn number(cell: &str) -> f64 {
    cell.replace(' ', "").parse().unwrap_or_else(|_| panic!("not a number: {cell:?}"))
}

#[test]
fn bench_eval_counts_questions_and_encodings() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let args = |size: &str| {
        let mut c = cli();
        c.args(["bench", "eval", "--package", pkg.to_str().unwrap(), "--videos", "2", "--questions", "2", "--frames", "2", "--size", size, "--tokens", "3"]);
        c
    };
    let out = args("56x56").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "{stderr}");
    // | videos | questions | encodings | preprocess | encode | answer | first | later | prompt | prefilled | questions/hour |
    let r = row_after(&stdout, "videos");
    assert_eq!(r.len(), 11, "{r:?}");
    assert_eq!((r[0].as_str(), r[1].as_str(), r[2].as_str()), ("2", "4", "2"), "2 videos, 4 questions, one encoding per video: {r:?}");
    assert_eq!(r[3], "n/a", "56x56 is below the pixel budget: random encoder inputs, no preprocessing figure");
    let (encode, answer, qph) = (number(&r[4]), number(&r[5]), number(&r[10]));
    assert!(encode >= 0.0 && answer > 0.0 && qph > 0.0, "{r:?}");
    // The rate is the questions over the whole run's time: 4 / (2 encodings + 4 answers).
    let expect = 4.0 / (2.0 * encode + 4.0 * answer) * 3600.0;
    assert!((qph - expect).abs() <= expect * 0.1 + 60.0, "{qph} questions/hour, the cells give {expect:.0}: {r:?}");
    // The throughput table: this run, two projections and the upstream figure (1 710 per hour).
    let t = row_after(&stdout, "VSI-Bench: 5 130 questions, 288 videos");
    assert!(t[0].starts_with("this run (2.0 questions per video)") && number(&t[1]) > 0.0, "{t:?}");
    assert!(stdout.contains("| upstream (Spatial-MLLM issue #23: one GPU, about 3 h) | 1 710 | 3.00 | 1.00x |"), "{stdout}");
    let asked: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("questions asked: "))
        .expect("the question mix")
        .split(", ")
        .map(|kv| kv.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(asked, 4);

    // Sides that are not multiples of 28 are bad input.
    let out = args("50x50").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("multiples of 28"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The run behind the table: one encoding per video; a video's first question prefills its whole
/// prompt (the visual block included), the later ones only what follows the shared prefix; every
/// answer has the tokens asked for and the evaluator's prompt.
#[test]
fn eval_bench_encodes_once_and_reuses_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let gpu = common::gpu(false);
    let (m, tok) = load_model(&gpu, &pkg).unwrap();
    let b = EvalBench { videos: 2, questions: 3, frames: 2, height: 56, width: 84, answer_tokens: 3, max_new_tokens: 1024, style: PromptStyle::V1_1, seed: 5 };
    let r = pollster::block_on(eval_bench::run(&gpu, &m, &tok, &b)).unwrap();
    assert_eq!((r.videos.len(), r.encodings, r.questions.len()), (2, 2, 6));
    for q in &r.questions {
        let vis = r.videos[q.video].vision_tokens;
        assert!(vis > 0 && q.answer_tokens == 3, "{q:?}");
        if q.index == 0 {
            assert_eq!(q.prefilled_tokens, q.prompt_tokens, "the first question prefills everything: {q:?}");
            assert!(q.prompt_tokens > vis, "{q:?}");
        } else {
            assert!(q.prefilled_tokens + vis < q.prompt_tokens, "a later question reuses the visual block: {q:?} ({vis} vision tokens)");
        }
    }
    assert!(r.questions_per_hour() > 0.0 && r.projected_grouped_ms() > 0.0 && r.projected_per_question_ms() > 0.0);
}
