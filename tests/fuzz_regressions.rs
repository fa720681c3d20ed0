//! Every input the fuzzers ever crashed on (tests/fixtures/fuzz/<target>/), and the committed seeds
//! (fuzz/seeds/<target>/), through the same checks as the fuzz targets (fuzz/src/checks.rs, included
//! here): a typed error or a result with the target's properties, never a panic. Plus the limits
//! the fixes added, on hand-made inputs, and the project's own configs passing them.

#[allow(dead_code)]
#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;

use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::shapes::check_config;
use spatial_mllm_web::weights::source::{header_len, SourceFile};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir/<target>/` for every target, as (target, file, bytes).
fn inputs(dir: &str) -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (target, _) in checks::TARGETS {
        let Ok(entries) = std::fs::read_dir(root().join(dir).join(target)) else { continue };
        let mut files: Vec<_> = entries.map(|e| e.expect("a readable directory").path()).collect();
        files.sort();
        for f in files {
            out.push((target, f.display().to_string(), std::fs::read(&f).expect("a readable file")));
        }
    }
    out
}

fn run_all(dir: &str) -> usize {
    let all = inputs(dir);
    for (target, file, bytes) in &all {
        let check = checks::TARGETS.iter().find(|(t, _)| t == target).expect("a known target").1;
        if std::panic::catch_unwind(|| check(bytes)).is_err() {
            panic!("{target}: {file} fails its check again (see the panic above)");
        }
    }
    all.len()
}

#[test]
fn crashes_found_by_fuzzing_stay_fixed() {
    let n = run_all("tests/fixtures/fuzz");
    assert!(n > 0, "no regression inputs in tests/fixtures/fuzz");
}

#[test]
fn seeds_pass_their_checks() {
    let n = run_all("fuzz/seeds");
    assert!(n >= 6, "only {n} seeds in fuzz/seeds");
}

/// A header claiming 10^18 bytes (or elements) is refused by name before anything is planned or
/// allocated for it.
#[test]
fn absurd_safetensors_headers_are_refused() {
    let huge = br#"{"w":{"dtype":"F32","shape":[1000000000,1000000000],"data_offsets":[0,4000000000000000000]}}"#;
    let e = SourceFile::parse(0, "huge.safetensors", huge).unwrap_err().to_string();
    assert!(e.contains("huge.safetensors"), "{e}");
    // Consistent in itself (safetensors' own checks pass) but over the limit: 3 G elements, 12 GB.
    let big = br#"{"w":{"dtype":"F32","shape":[3000000000],"data_offsets":[0,12000000000]}}"#;
    let e = SourceFile::parse(0, "big.safetensors", big).unwrap_err().to_string();
    assert!(e.contains("big.safetensors") && e.contains("over 2147483648 elements"), "{e}");
    let backwards = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#;
    assert!(SourceFile::parse(0, "b.safetensors", backwards).is_err());
    let past_end = format!(r#"{{"w":{{"dtype":"U8","shape":[1],"data_offsets":[{0},{1}]}}}}"#, u64::MAX - 1, u64::MAX);
    assert!(SourceFile::parse(0, "e.safetensors", past_end.as_bytes()).is_err());
    assert!(header_len("x", &1_000_000_000_000_000_000u64.to_le_bytes()).is_err());
}

/// Configs that would divide by zero or describe billions of tensors are refused; every config the
/// project ships or tests with passes.
#[test]
fn config_limits_refuse_absurd_sizes_and_keep_real_ones() {
    for bad in [
        serde_json::json!({"num_attention_heads": 0}),
        serde_json::json!({"num_key_value_heads": 0}),
        serde_json::json!({"num_hidden_layers": 1_000_000_000u64}),
        serde_json::json!({"vocab_size": 1u64 << 40}),
        serde_json::json!({"vision_config": {"spatial_merge_size": 1u64 << 33}}),
    ] {
        assert!(check_config(ModelKind::QwenVl, &bad).is_err(), "{bad}");
    }
    for bad in [serde_json::json!({"num_heads": 0}), serde_json::json!({"patch_size": 0}), serde_json::json!({"depth": 100_000})] {
        assert!(check_config(ModelKind::Vggt, &bad).is_err(), "{bad}");
    }
    let kinds = [
        ("qwen2.5-vl", ModelKind::QwenVl),
        ("spatial-mllm-v1.0", ModelKind::SpatialMllmV10),
        ("spatial-mllm-v1.1", ModelKind::SpatialMllmV11),
        ("vggt", ModelKind::Vggt),
    ];
    for (dir, kind) in kinds {
        let text = std::fs::read_to_string(root().join("tests/fixtures").join(dir).join("config.json")).unwrap();
        check_config(kind, &serde_json::from_str(&text).unwrap()).unwrap_or_else(|e| panic!("{dir}: {e}"));
    }
    for (file, kind) in [("qwen2.5-vl-3b.json", ModelKind::QwenVl), ("spatial-mllm-v1.1.json", ModelKind::SpatialMllmV11), ("vggt-1b.json", ModelKind::Vggt)] {
        let text = std::fs::read_to_string(root().join("models/configs").join(file)).unwrap();
        check_config(kind, &serde_json::from_str(&text).unwrap()).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let text = std::fs::read_to_string(root().join("tests/fixtures/tiny-spatial-mllm-config.json")).unwrap();
    check_config(ModelKind::SpatialMllmV11, &serde_json::from_str(&text).unwrap()).expect("the demo model's config");
    check_config(ModelKind::SpatialMllmV11, &serde_json::json!({})).expect("the defaults are the real model's");
}

/// The seed manifests (written by `spatial-mllm convert`) pass the stricter validation.
#[test]
fn converted_manifests_still_parse() {
    for entry in std::fs::read_dir(root().join("fuzz/seeds/manifest")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        spatial_mllm_web::weights::Manifest::parse(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    }
}
