//! The reference fixtures (tests/fixtures, made by tools/fixtures/make_fixtures.py from the
//! upstream code): each converts to a package whose tensors equal the checkpoint's within each
//! format's error, every upstream tensor is accounted for, and the package loads on the GPU.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use spatial_mllm_web::gpu::{Gpu, GpuOptions};
use spatial_mllm_web::weights::convert::{convert, ConvertOptions};
use spatial_mllm_web::weights::layout::{canonical, ModelKind};
use spatial_mllm_web::weights::loader::GpuParam;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;
use spatial_mllm_web::weights::shapes::{expected, vggt_section, VggtDims};
use spatial_mllm_web::weights::WeightFormat;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Every tensor of the fixture's checkpoint, as f32, by upstream key.
fn source_tensors(dir: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let d = v.data();
            let vals: Vec<f32> = match v.dtype() {
                Dtype::BF16 => d.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                other => panic!("{k}: unexpected dtype {other:?}"),
            };
            (k, (v.shape().to_vec(), vals))
        })
        .collect()
}

/// Largest |error| allowed relative to the tensor's largest |value| (bf16 sources are exact in
/// f16 except for values below f16's normal range, hence the small absolute floor).
fn format_tol(f: WeightFormat) -> (f32, f32) {
    match f {
        WeightFormat::F32 => (0.0, 0.0),
        WeightFormat::F16 => (1.0 / 2048.0, 6e-8),
        WeightFormat::Q8 => (1.0 / 127.0, 0.0),
        WeightFormat::Q4 => (1.0 / 8.0, 0.0),
    }
}

fn roundtrip(name: &str, kind: ModelKind, policy: &str) {
    let src = fixture(name);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("pkg");
    let opts = ConvertOptions { policy: Policy::parse(policy).unwrap(), max_shard: 256 << 10 };
    let m = convert(&src, &dst, &opts, &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(m.model_kind, kind.id(), "{name}: detected kind");
    assert!(m.shards.len() >= 2, "{name}: small shards force several");
    let pkg = Package::open(&dst).unwrap();
    pkg.verify().unwrap();
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let tied = config.get("tie_word_embeddings").and_then(|v| v.as_bool()).unwrap_or(true);
    config_is_kept(name, kind, &config, &m.config);

    let source = source_tensors(&src);
    let mut stored = 0;
    for (key, (shape, want)) in &source {
        let Some(canon) = canonical(kind, key) else {
            assert!(key.contains("track_head") || key.ends_with("mask_token"), "{name}: {key} dropped");
            continue;
        };
        if canon == "llm.lm_head.weight" && tied {
            continue;
        }
        let t = pkg.manifest.tensors.get(&canon).unwrap_or_else(|| panic!("{name}: {key} ({canon}) not in the package"));
        assert_eq!(&t.shape, shape, "{name}: {canon} shape");
        let got = pkg.read_tensor(&canon).unwrap();
        let scale = want.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let err = got.iter().zip(want).fold(0f32, |a, (g, w)| a.max((g - w).abs()));
        let (rel, abs) = format_tol(t.format);
        assert!(err <= rel * scale + abs, "{name}: {canon} ({:?}) error {err} vs scale {scale}", t.format);
        stored += 1;
    }
    assert_eq!(stored, pkg.manifest.tensors.len(), "{name}: the package holds exactly the source's tensors");
    // Every tensor inference needs is there, at the shape the config implies.
    for e in expected(kind, &config).into_iter().filter(|e| e.required) {
        assert!(pkg.manifest.tensors.contains_key(&e.name), "{name}: {} missing", e.name);
    }
    let gpu = pollster::block_on(Gpu::new(GpuOptions::default())).expect("a GPU adapter");
    let loaded = pkg.load(&gpu, &mut |_| {}).unwrap();
    for (n, t) in &pkg.manifest.tensors {
        match &loaded[n] {
            GpuParam::Vector(v) => assert_eq!(v.numel(), t.cols, "{n}"),
            GpuParam::Matrix(parts) => assert_eq!(parts.iter().map(|w| w.rows).sum::<usize>(), t.rows, "{n}"),
        }
    }
}

/// The package's config is the checkpoint's plus, with VGGT, a `vggt_config` of the sizes read
/// from the tensors: equal to every size the checkpoint's config names, so the model built from
/// the package is the one its config describes.
fn config_is_kept(name: &str, kind: ModelKind, source: &serde_json::Value, package: &serde_json::Value) {
    let without = |v: &serde_json::Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("vggt_config");
        v
    };
    assert_eq!(without(package), without(source), "{name}: the config is kept");
    if !kind.has_vggt() {
        assert_eq!(package, source, "{name}: no VGGT, nothing added");
        return;
    }
    let derived = &package["vggt_config"];
    for (key, value) in vggt_section(kind, source).as_object().unwrap() {
        if let Some(d) = derived.get(key) {
            assert_eq!(d, value, "{name}: vggt_config.{key}");
        }
    }
    assert_eq!(VggtDims::from_config(kind, package), VggtDims::from_config(kind, source), "{name}: the same structure");
}

#[test]
fn qwen_vl_fixture_converts_and_loads() {
    roundtrip("qwen2.5-vl", ModelKind::QwenVl, "");
}

#[test]
fn vggt_fixture_converts_and_loads() {
    roundtrip("vggt", ModelKind::Vggt, "");
}

#[test]
fn spatial_mllm_v11_fixture_converts_and_loads() {
    roundtrip("spatial-mllm-v1.1", ModelKind::SpatialMllmV11, "");
}

#[test]
fn spatial_mllm_v10_fixture_converts_and_loads() {
    roundtrip("spatial-mllm-v1.0", ModelKind::SpatialMllmV10, "");
}

/// With every tensor kept in f32 the package is bit-exact.
#[test]
fn fixtures_are_exact_in_f32() {
    for (name, kind) in [("qwen2.5-vl", ModelKind::QwenVl), ("spatial-mllm-v1.1", ModelKind::SpatialMllmV11)] {
        roundtrip(name, kind, "=f32");
    }
}
