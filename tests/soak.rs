//! `bench soak` on a short budget (issue 19, long sessions): 20 questions in a row about one video
//! and 5 videos one after another with the app's tiny demo model. The GPU tally and the resident
//! memory grow by no more than the stated bounds after the warm-up, every answer equals a fresh
//! engine's in a fresh session, and a bound that is broken fails the command with exit code 5.
//! The full 200 / 50 run is `spatial-mllm bench soak` (figures in the README).

use std::process::{Command, Output};

fn soak(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_spatial-mllm")).args(["bench", "soak"]).args(args).output().unwrap();
    println!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// The table's row of `phase` and `measure`: its cells start, after warm-up, end, growth, bound.
fn row(table: &str, phase: &str, measure: &str) -> Vec<f64> {
    let line = table.lines().find(|l| l.starts_with(&format!("| {phase}")) && l.contains(measure)).unwrap_or_else(|| panic!("no row {phase} / {measure}:\n{table}"));
    line.split('|').skip(3).map(str::trim).filter(|c| !c.is_empty() && *c != "-").map(|c| c.parse::<f64>().unwrap_or_else(|_| panic!("{c:?} in {line}"))).collect()
}

#[test]
fn long_sessions_stay_within_their_bounds_and_answer_as_fresh_ones() {
    // One test, so that the two runs do not convert the demo model at the same time.
    let out = soak(&["--questions", "20", "--videos", "5", "--gpu-bound-mib", "0.25", "--rss-bound-mib", "16"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit code {:?}", out.status.code());
    assert!(table.contains("answers equal to a fresh session's: 25 of 25"), "{table}");
    assert!(table.contains("verdict: ok"), "{table}");
    for phase in ["questions in one session (step 5)", "videos one after another (step 3)"] {
        let gpu = row(&table, phase, "GPU tally");
        assert!(gpu[0] > 0.0 && gpu[2] > 0.0, "the tally counts the weights and the session: {gpu:?}");
        assert!(gpu[3] <= 256.0 && gpu[4] == 256.0, "GPU growth after the warm-up {} KiB, bound 256 KiB", gpu[3]);
        let rss = row(&table, phase, "resident memory");
        assert!(rss[3] <= 16.0 && rss[4] == 16.0, "resident memory growth {} MiB, bound 16 MiB", rss[3]);
        let pipelines = row(&table, phase, "pipelines");
        assert_eq!(pipelines[3], 0.0, "no pipeline compiled after the warm-up");
    }

    // No warm-up and no allowance: the first question's pipelines and buffers are growth, a failed check.
    let out = soak(&["--questions", "2", "--videos", "1", "--warmup-questions", "0", "--warmup-videos", "0", "--gpu-bound-mib", "0", "--rss-bound-mib", "0"]);
    let (table, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(table.contains("verdict: FAILED") && err.contains("questions in one session: the GPU tally grew by"), "{table}{err}");
}
