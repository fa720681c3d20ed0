//! The command line's `run` on the tiny Spatial-MLLM v1.1 fixture: a video made by ffmpeg and a
//! folder of frames, streamed and `--json` output, and clear errors with distinct exit codes (2 bad
//! input, 3 the model or its package, 4 the GPU), with no Vulkan-loader noise in front of them; the
//! tiny Qwen2.5-VL fixture (no spatial encoder) on a text-only question, a video, an image and `eval`;
//! `info` measuring the GEMM tiling once and recalling it after.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::ffmpeg;

/// The command line, with the environment as the test command has it (the binary gives itself a
/// runtime directory where there is none: `native::runtime_dir`).
fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spatial-mllm"))
}

/// The Spatial-MLLM v1.1 fixture converted to a package (f32, as the parity tests use it).
fn package(dir: &Path) -> PathBuf {
    package_of(dir, "spatial-mllm-v1.1", "pkg")
}

/// A fixture converted to an f32 package at `dir/name`.
fn package_of(dir: &Path, fixture: &str, name: &str) -> PathBuf {
    let pkg = dir.join(name);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
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
        .args([
            "run",
            "--model",
            pkg.to_str().unwrap(),
            video.to_str().unwrap(),
            "-q",
            "How many chairs are there?",
            "--frames",
            "4",
            "--max-new-tokens",
            "8",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "run: {}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    println!("{j}");
    assert_eq!((j["model_kind"].as_str(), j["spatial_encoder"].as_bool(), j["input"].as_str()), (Some("spatial-mllm-v1.1"), Some(true), Some("video")));
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

    // The same frames given as image files: the same answer again.
    let mut images: Vec<String> = std::fs::read_dir(&frames).unwrap().map(|e| e.unwrap().path().to_str().unwrap().to_string()).collect();
    images.sort();
    let out = cli()
        .args(["run", "--model", pkg.to_str().unwrap(), "-q", "How many chairs are there?", "--frames", "4", "--max-new-tokens", "8"])
        .args(&images)
        .output()
        .unwrap();
    assert!(out.status.success(), "run on images: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'), j["answer"].as_str().unwrap());

    // A video among several inputs is refused clearly.
    let out = cli().args(["run", "--model", pkg.to_str().unwrap(), "-q", "?", &images[0], video.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must all be .png / .jpg images"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A single image (a folder with one frame) and a portrait video are answered: the image is
/// repeated into one temporal pair, the portrait frames keep their orientation.
#[test]
fn run_takes_a_single_image_and_a_portrait_video() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let one = tmp.path().join("one");
    std::fs::create_dir(&one).unwrap();
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=90x60:rate=1", "-frames:v", "1", one.join("image.png").to_str().unwrap()]);
    let portrait = tmp.path().join("portrait.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=56x112:rate=4", "-frames:v", "6", "-pix_fmt", "yuv420p", portrait.to_str().unwrap()]);
    for input in [&one, &portrait] {
        let out = cli()
            .args(["run", "--model", pkg.to_str().unwrap(), input.to_str().unwrap(), "-q", "What is this?", "--frames", "4", "--max-new-tokens", "4", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", input.display(), String::from_utf8_lossy(&out.stderr));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let [w, h] = [j["frame_size"][0].as_u64().unwrap(), j["frame_size"][1].as_u64().unwrap()];
        assert!(w % 28 == 0 && h % 28 == 0, "{j}");
        if input == &portrait {
            assert!(h > w, "a portrait video stays portrait: {j}");
        }
    }
}

#[test]
fn run_reports_bad_input_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let not_video = tmp.path().join("notes.mp4");
    std::fs::write(&not_video, b"this is not a video").unwrap();
    // A very wide video: the reference's aspect-ratio limit (200) is a clear error.
    let wide = tmp.path().join("wide.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=4200x20:rate=4", "-frames:v", "16", "-pix_fmt", "yuv420p", wide.to_str().unwrap()]);
    // A video with fewer frames than asked for.
    let short = tmp.path().join("short.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=56x56:rate=4", "-frames:v", "3", "-pix_fmt", "yuv420p", short.to_str().unwrap()]);
    let cases: [(Vec<String>, &str); 5] = [
        (vec![wide.display().to_string()], "aspect ratio"),
        (vec![short.display().to_string()], "must lie in [2, 3]"),
        (vec![tmp.path().join("missing.mp4").display().to_string()], "no such file"),
        (vec![not_video.display().to_string()], "ffprobe failed"),
        (vec![not_video.display().to_string(), "--sampling".into(), "fast".into()], "needs --vggt"),
    ];
    for (args, want) in cases {
        let out = cli().args(["run", "--model", pkg.to_str().unwrap(), "-q", "why?"]).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// Each class of failure has its exit code and its message alone on stderr: bad input (a missing
/// file, a usage error, `--frames 0`) 2, a corrupt package 3, no GPU adapter 4; `--help` lists them.
#[test]
fn exit_codes_tell_input_model_and_gpu_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let p = pkg.to_str().unwrap();
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=56x56:rate=4", "-frames:v", "4", frames.join("f%03d.png").to_str().unwrap()]);
    let video = tmp.path().join("clip.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=56x56:rate=4", "-frames:v", "6", "-pix_fmt", "yuv420p", video.to_str().unwrap()]);
    // A corrupt package: one byte of its first shard flipped (its SHA-256 no longer matches).
    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    for e in std::fs::read_dir(&pkg).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), corrupt.join(e.file_name())).unwrap();
    }
    let shard = corrupt.join("shard-00000.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    std::fs::write(&shard, bytes).unwrap();

    let q = |extra: &[&str]| -> Vec<String> {
        ["run", "--model", p, "-q", "How many chairs?", "--max-new-tokens", "2"].iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let missing = tmp.path().join("missing.mp4");
    // The arguments, an environment variable to set, the exit code and a part of the message.
    type Case<'a> = (Vec<String>, Option<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (q(&[missing.to_str().unwrap()]), None, 2, "missing.mp4: no such file or folder"),
        (vec!["run".into(), "--no-such-option".into()], None, 2, "unexpected argument '--no-such-option'"),
        (q(&[video.to_str().unwrap(), "--frames", "0"]), None, 2, "zero frames were asked for (--frames 0)"),
        // A folder of frames used to say "the video has no frames" here.
        (q(&[frames.to_str().unwrap(), "--frames", "0"]), None, 2, "zero frames were asked for (--frames 0)"),
        (vec!["run".into(), "--model".into(), corrupt.display().to_string(), "-q".into(), "?".into()], None, 3, "is corrupt: SHA-256"),
        // No adapter of that name: the engine honours WGPU_ADAPTER_NAME to pick among adapters.
        (vec!["info".into()], Some(("WGPU_ADAPTER_NAME", "no-such-adapter")), 4, "no GPU adapter found"),
    ];
    for (args, env, code, want) in cases {
        let mut c = cli();
        c.args(&args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        println!("{args:?} -> {:?}: {err}", out.status.code());
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }

    // The codes are documented in --help.
    let out = cli().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for line in ["Exit codes:", "1  something unexpected", "2  bad input", "3  the model or its package", "4  the GPU", "5  a check failed"] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

/// Without a valid XDG_RUNTIME_DIR (unset, or a relative path) Mesa's Vulkan device-select layer
/// used to make libwayland print "XDG_RUNTIME_DIR is invalid or not set" twice in front of every
/// error: the error is now alone on stderr. An absolute path to a missing folder was quiet already.
#[test]
fn no_vulkan_loader_noise_before_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let video = tmp.path().join("clip.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=56x56:rate=4", "-frames:v", "6", "-pix_fmt", "yuv420p", video.to_str().unwrap()]);
    let missing_dir = tmp.path().join("no-such-runtime-dir");
    for xdg in [None, Some("relative/run"), Some(""), Some(missing_dir.to_str().unwrap())] {
        let mut c = cli();
        match xdg {
            None => c.env_remove("XDG_RUNTIME_DIR"),
            Some(v) => c.env("XDG_RUNTIME_DIR", v),
        };
        // The GPU is set up and the model loaded before the frame count fails: the whole path runs.
        let out = c.args(["run", "--model", pkg.to_str().unwrap(), video.to_str().unwrap(), "-q", "?", "--frames", "8"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "XDG_RUNTIME_DIR={xdg:?}: {err}");
        assert!(!err.contains("XDG_RUNTIME_DIR"), "XDG_RUNTIME_DIR={xdg:?}: loader noise on stderr: {err}");
        assert_eq!(err.lines().count(), 1, "XDG_RUNTIME_DIR={xdg:?}: the error alone: {err}");
        assert!(err.starts_with("error: ") && err.contains("must lie in [2, 6]"), "{err}");
    }
}

/// `eval` over a small generated annotation set: a bad line is reported with its line number and
/// skipped, every good sample gets one result line, the table prints, a rerun resumes.
#[test]
fn eval_scores_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let videos = tmp.path().join("videos");
    common::scannet_videos(&videos);
    let ann = tmp.path().join("vsi.jsonl");
    std::fs::write(
        &ann,
        r#"{"id": 1, "dataset": "scannet", "scene_name": "scene0001_00", "question_type": "object_counting", "question": "How many chair(s) are in this room?", "ground_truth": "2"}
{"id": 2, "dataset": "scannet", "scene_name": "scene0001_00", "question_type": "object_rel_distance", "question": "Which is closest to the bed?", "options": ["A. desk", "B. door"], "ground_truth": "A"}
{"id": 3, "dataset": "scannet", "scene_name": "scene0002_00", "question_type": "room_size_estimation", "question": "How big is the room?"
{"id": 4, "dataset": "scannet", "scene_name": "scene0002_00", "question_type": "object_abs_distance", "question": "How far is the sofa from the door?", "ground_truth": "1.5"}
"#,
    )
    .unwrap();
    let results = tmp.path().join("results.jsonl");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = ["eval", "--model", pkg.to_str().unwrap(), "--annotations", ann.to_str().unwrap(), "--videos", videos.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--results".into(), results.display().to_string(), "--frames".into(), "4".into(), "--max-new-tokens".into(), "6".into()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = cli().args(args(&[])).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("line 3"), "the bad line is named: {stderr}");
    assert!(stdout.contains("3 evaluated, 0 resumed"), "{stdout}");
    let lines = std::fs::read_to_string(&results).unwrap();
    assert_eq!(lines.lines().count(), 3, "one result line per good sample");
    let out = cli().args(args(&[])).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("0 evaluated, 3 resumed"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&results).unwrap(), lines, "a resumed run rewrites nothing");

    // ScanQA: LLaVA-style conversations over a folder of frames, exact-match scores.
    let frames = videos.join("scannet").join("scene0003_00");
    std::fs::create_dir_all(&frames).unwrap();
    let src = videos.join("scannet/scene0001_00.mp4");
    ffmpeg(&["-i", src.to_str().unwrap(), "-vsync", "0", frames.join("%03d.png").to_str().unwrap()]);
    let qa = tmp.path().join("scanqa.json");
    std::fs::write(&qa, r#"[{"id": "q1", "video": "scannet/scene0003_00", "conversations": [{"from": "human", "value": "<image> What is in the corner? Answer the question simply."}, {"from": "gpt", "value": "cabinet"}], "metadata": {"question_type": "what", "answers": ["cabinet"]}}]"#).unwrap();
    let qa_results = tmp.path().join("scanqa.jsonl");
    let out = cli()
        .args(["eval", "--benchmark", "scanqa", "--model", pkg.to_str().unwrap(), "--annotations", qa.to_str().unwrap(), "--videos", videos.to_str().unwrap()])
        .args(["--results", qa_results.to_str().unwrap(), "--frames", "4", "--max-new-tokens", "4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success() && stdout.contains("1 evaluated"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&qa_results).unwrap().lines().count(), 1);
}

/// `sample`: both presets pick frames of a short video with the tiny VGGT, and their agreement is
/// reported (with random weights the picks themselves mean nothing; real VGGT-1B weights measure
/// how well the fast mode stands in for the full one).
#[test]
fn sample_compares_the_full_and_fast_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("vggt");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vggt");
    let out = cli().args(["convert", fixture.to_str().unwrap(), pkg.to_str().unwrap(), "--policy", "=f32"]).output().unwrap();
    assert!(out.status.success(), "convert: {}", String::from_utf8_lossy(&out.stderr));
    let video = tmp.path().join("clip.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=64x48:rate=4", "-frames:v", "6", "-pix_fmt", "yuv420p", video.to_str().unwrap()]);
    let out = cli().args(["sample", "--vggt", pkg.to_str().unwrap(), video.to_str().unwrap(), "--k", "2", "--json"]).output().unwrap();
    assert!(out.status.success(), "sample: {}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{j}");
    for m in j["modes"].as_array().unwrap() {
        let f: Vec<u64> = m["frames"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert!(f.len() == 2 && f[0] < f[1] && f[1] < 6, "{m}");
    }
    let a = j["agreement"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&a));
}

/// Run `args` with `--json`; the parsed output.
fn run_json(args: &[&str]) -> serde_json::Value {
    let out = cli().arg("run").args(args).arg("--json").output().unwrap();
    assert!(out.status.success(), "run {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    println!("{j}");
    j
}

/// A plain Qwen2.5-VL package answers everywhere a Spatial-MLLM one does: a text-only question
/// (transformers' greedy reply to the fixture's text prompt), a video (uniform, and space-aware
/// with the separate VGGT package), one image (Qwen2.5-VL's image path) and `eval`; a Spatial-MLLM
/// package takes text-only questions too.
#[test]
fn run_and_eval_with_a_qwen_package() {
    let tmp = tempfile::tempdir().unwrap();
    let qwen = package_of(tmp.path(), "qwen2.5-vl", "qwen");
    let q = qwen.to_str().unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2.5-vl/reference.json")).unwrap()).unwrap();

    // Text only: no input. The reference generated 32 tokens without a stop token; none is <|im_end|>.
    let j = run_json(&["--model", q, "-q", "How many chairs are there? 房间 123  !", "--max-new-tokens", "32"]);
    assert_eq!((j["model_kind"].as_str(), j["spatial_encoder"].as_bool(), j["input"].as_str()), (Some("qwen2.5-vl"), Some(false), Some("text")));
    assert_eq!(j["answer"], meta["cases"]["text"]["generated_text"], "transformers' greedy reply");
    assert_eq!((j["tokens"].as_u64(), j["frames"].as_array().map(|f| f.len())), (Some(32), Some(0)));

    // A video, uniformly sampled; and space-aware with the tiny VGGT package as the sampler.
    let video = tmp.path().join("room.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=140x56:rate=4", "-frames:v", "12", "-pix_fmt", "yuv420p", video.to_str().unwrap()]);
    let v = video.to_str().unwrap();
    let j = run_json(&["--model", q, v, "-q", "How far is the sofa?", "--frames", "4", "--max-new-tokens", "8"]);
    assert_eq!((j["model_kind"].as_str(), j["input"].as_str()), (Some("qwen2.5-vl"), Some("video")));
    assert_eq!(j["frames"], serde_json::json!([0, 4, 7, 11]));
    assert!(!j["answer"].as_str().unwrap().is_empty() && j["tokens"].as_u64().unwrap() > 0, "{j}");
    // The same frames as a folder: the same answer.
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    ffmpeg(&["-i", v, "-vf", "select='eq(n\\,0)+eq(n\\,4)+eq(n\\,7)+eq(n\\,11)'", "-vsync", "0", frames.join("f%03d.png").to_str().unwrap()]);
    let f = run_json(&["--model", q, frames.to_str().unwrap(), "-q", "How far is the sofa?", "--frames", "4", "--max-new-tokens", "8"]);
    assert_eq!((&f["answer"], f["input"].as_str()), (&j["answer"], Some("video")));
    let vggt = package_of(tmp.path(), "vggt", "vggt");
    let j =
        run_json(&["--model", q, v, "-q", "How far is the sofa?", "--frames", "4", "--max-new-tokens", "8", "--sampling", "fast", "--vggt", vggt.to_str().unwrap()]);
    assert_eq!(j["frames"].as_array().unwrap().len(), 4, "{j}");
    assert!(!j["answer"].as_str().unwrap().is_empty(), "{j}");

    // One image: Qwen2.5-VL's image path (the HF processor's resize to multiples of 28).
    let image = tmp.path().join("image.png");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=139x61:rate=1", "-frames:v", "1", image.to_str().unwrap()]);
    let j = run_json(&["--model", q, image.to_str().unwrap(), "-q", "What is this?", "--max-new-tokens", "8"]);
    assert_eq!((j["input"].as_str(), &j["frame_size"]), (Some("image"), &serde_json::json!([140, 56])));
    assert!(!j["answer"].as_str().unwrap().is_empty(), "{j}");

    // Space-aware sampling needs a video.
    let out = cli().args(["run", "--model", q, "-q", "why?", "--sampling", "fast"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A Spatial-MLLM package answers a text-only question with its language model.
    let spatial = package(tmp.path());
    let j = run_json(&["--model", spatial.to_str().unwrap(), "-q", "How many chairs are there?", "--max-new-tokens", "4"]);
    assert_eq!((j["model_kind"].as_str(), j["input"].as_str()), (Some("spatial-mllm-v1.1"), Some("text")));

    // eval: the same VSI-Bench prompts, one result line per sample.
    let videos = tmp.path().join("videos");
    std::fs::create_dir_all(videos.join("scannet")).unwrap();
    std::fs::copy(&video, videos.join("scannet/scene0001_00.mp4")).unwrap();
    let ann = tmp.path().join("vsi.jsonl");
    std::fs::write(
        &ann,
        r#"{"id": 1, "dataset": "scannet", "scene_name": "scene0001_00", "question_type": "object_counting", "question": "How many chair(s) are in this room?", "ground_truth": "2"}
{"id": 2, "dataset": "scannet", "scene_name": "scene0001_00", "question_type": "object_rel_distance", "question": "Which is closest to the bed?", "options": ["A. desk", "B. door"], "ground_truth": "A"}
"#,
    )
    .unwrap();
    let results = tmp.path().join("results.jsonl");
    let out = cli()
        .args(["eval", "--model", q, "--annotations", ann.to_str().unwrap(), "--videos", videos.to_str().unwrap(), "--results", results.to_str().unwrap()])
        .args(["--frames", "4", "--max-new-tokens", "6"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success() && stdout.contains("2 evaluated, 0 resumed"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&results).unwrap().lines().count(), 2);
}

/// `info` names the GEMM tiling and the attention kernel and where they came from: measured on an
/// adapter's first start and kept in the package cache's kernel-tuning.json, recalled (not
/// measured) on the next.
#[test]
fn info_measures_the_kernel_choices_once_and_remembers_them() {
    let tmp = tempfile::tempdir().unwrap();
    let choices = || {
        let out =
            cli().env("SPATIAL_MLLM_CACHE", tmp.path()).env_remove("SPATIAL_MLLM_GEMM_TILE").env_remove("SPATIAL_MLLM_ATTENTION").arg("info").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "info: {}", String::from_utf8_lossy(&out.stderr));
        let line = |prefix: &str| stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} line in {stdout}")).to_string();
        [line("GEMM tiling: "), line("attention kernel: ")]
    };
    let first = choices();
    let second = choices();
    let choice = |l: &str| l.split_whitespace().nth(2).unwrap().to_string();
    for (first, second) in first.iter().zip(&second) {
        assert!(first.contains("(measured now, remembered in ") && first.contains("kernel-tuning.json"), "{first}");
        assert!(second.contains("(measured on an earlier start, remembered in "), "{second}");
        assert_eq!(choice(first), choice(second));
    }
    assert!(tmp.path().join("kernel-tuning.json").is_file());
}

/// The line of `info` that starts with `prefix`, with the environment variable `var` set to
/// `value` (unset for None).
fn info_line(var: &str, value: Option<&str>, prefix: &str) -> String {
    info_line_in(&std::env::temp_dir().join("spatial-mllm-cli-tests"), var, value, prefix)
}

/// `info_line` with the package cache (and its measured kernel choices) in `cache`.
fn info_line_in(cache: &Path, var: &str, value: Option<&str>, prefix: &str) -> String {
    let mut c = cli();
    c.env("SPATIAL_MLLM_CACHE", cache);
    match value {
        Some(v) => c.env(var, v),
        None => c.env_remove(var),
    };
    let out = c.arg("info").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "info: {}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line {prefix:?} in {stdout}")).to_string()
}

/// `info` names the decode step's kernels: the separate ones on lavapipe (a CPU adapter), or those
/// SPATIAL_MLLM_DECODE sets; a value it does not know is ignored.
#[test]
fn info_names_the_decode_kernels_and_the_override() {
    let decode = |value| info_line("SPATIAL_MLLM_DECODE", value, "decode step: ");
    assert_eq!(decode(None), "decode step: separate kernels, 12-13 dispatches a layer (the default on a CPU adapter)");
    assert_eq!(decode(Some("folded")), "decode step: folded kernels, 4 dispatches a layer (set by SPATIAL_MLLM_DECODE)");
    assert_eq!(decode(Some("fast")), "decode step: separate kernels, 12-13 dispatches a layer (the default on a CPU adapter)");
}

/// `info` names the encoders' attention kernel: the register-tiled one on lavapipe (no matrix
/// units; measured, it wins there by about 1.6x), `flash_tile` or a `flash_blocked` shape where
/// `SPATIAL_MLLM_ATTENTION` names one, the measured one for any other value.
#[test]
fn info_names_the_attention_kernel_and_the_override() {
    let tmp = tempfile::tempdir().unwrap();
    let attention = |value| {
        let line = info_line_in(tmp.path(), "SPATIAL_MLLM_ATTENTION", value, "attention (prefill, encoders): ");
        line.rsplit_once(" (").unwrap().0.to_string()
    };
    let blocked = attention(None);
    assert_eq!(blocked, "attention (prefill, encoders): flash_blocked, register-tiled, 64 keys a step at heads of 64 in 32 KiB of workgroup memory; flash_tile for head dims not a multiple of 16");
    assert_eq!(attention(Some("blocked")), blocked);
    assert_eq!(attention(Some("blocked-16k")), blocked.replace("64 keys", "32 keys").replace("32 KiB", "16 KiB"));
    assert_eq!(attention(Some("tile")), "attention (prefill, encoders): flash_tile, one query per thread");
    assert_eq!(attention(Some("fastest")), blocked);
    let how = info_line_in(tmp.path(), "SPATIAL_MLLM_ATTENTION", Some("tile"), "attention kernel: ");
    assert_eq!(how, "attention kernel: tile (set by SPATIAL_MLLM_ATTENTION)");
}
