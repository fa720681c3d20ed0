//! The command line's `run` on the tiny Spatial-MLLM v1.1 fixture: a video made by ffmpeg and a
//! folder of frames, streamed and `--json` output, and clear errors with distinct exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spatial-mllm"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

fn ffmpeg(args: &[&str]) {
    let ok = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).status().expect("ffmpeg is installed (apt install ffmpeg)");
    assert!(ok.success(), "ffmpeg {args:?}");
}

/// The fixture converted to a package (f32, as the parity tests use it).
fn package(dir: &Path) -> PathBuf {
    let pkg = dir.join("pkg");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spatial-mllm-v1.1");
    let out = cli().args(["convert", fixture.to_str().unwrap(), pkg.to_str().unwrap(), "--policy", "=f32"]).output().unwrap();
    assert!(out.status.success(), "convert: {}", String::from_utf8_lossy(&out.stderr));
    pkg
}

#[test]
fn run_answers_about_a_video_and_a_folder_of_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let video = tmp.path().join("room.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=140x56:rate=4", "-frames:v", "12", "-pix_fmt", "yuv420p", video.to_str().unwrap()]);
    let out = cli()
        .args(["run", "--model", pkg.to_str().unwrap(), video.to_str().unwrap(), "-q", "How many chairs are there?", "--frames", "4", "--max-new-tokens", "8", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "run: {}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    println!("{j}");
    // linspace(0, 11, 4) rounded half to even: 0, 3.67, 7.33, 11.
    assert_eq!(j["frames"], serde_json::json!([0, 4, 7, 11]));
    assert!(j["tokens"].as_u64().unwrap() <= 8 && j["answer"].is_string());
    assert_eq!(j["frame_size"].as_array().unwrap().len(), 2);

    // The same frames as files in a folder: the same answer, streamed as text.
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    ffmpeg(&["-i", video.to_str().unwrap(), "-vf", "select='eq(n\\,0)+eq(n\\,4)+eq(n\\,7)+eq(n\\,11)'", "-vsync", "0", frames.join("f%03d.png").to_str().unwrap()]);
    let out = cli()
        .args(["run", "--model", pkg.to_str().unwrap(), frames.to_str().unwrap(), "-q", "How many chairs are there?", "--frames", "4", "--max-new-tokens", "8"])
        .output()
        .unwrap();
    assert!(out.status.success(), "run on frames: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'), j["answer"].as_str().unwrap());
}

#[test]
fn run_reports_bad_input_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let not_video = tmp.path().join("notes.mp4");
    std::fs::write(&not_video, b"this is not a video").unwrap();
    let cases: [(Vec<String>, &str); 3] = [
        (vec![tmp.path().join("missing.mp4").display().to_string()], "no such file"),
        (vec![not_video.display().to_string()], "ffprobe failed"),
        (vec![not_video.display().to_string(), "--sampling".into(), "fast".into()], "needs --vggt"),
    ];
    for (args, want) in cases {
        let out = cli().args(["run", "--model", pkg.to_str().unwrap(), "-q", "why?"]).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
