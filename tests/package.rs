//! Model package: convert tiny checkpoints in every upstream layout, load them back (CPU and GPU)
//! within each format's error, and reject bad input with the right error.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use spatial_mllm_web::gpu::{Gpu, GpuOptions};
use spatial_mllm_web::testing::Rng;
use spatial_mllm_web::weights::convert::{convert, write_random, ConvertOptions};
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::loader::GpuParam;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;
use spatial_mllm_web::weights::shapes::expected;
use spatial_mllm_web::weights::{PackageError, WeightFormat};

fn tiny_config() -> serde_json::Value {
    serde_json::json!({
        "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 300, "tie_word_embeddings": true,
        "vision_config": {"hidden_size": 32, "intermediate_size": 48, "depth": 2, "num_heads": 2,
                          "out_hidden_size": 64, "patch_size": 14, "temporal_patch_size": 2, "spatial_merge_size": 2},
        "vggt_config": {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 14, "img_size": 56,
                        "dpt_features": 8, "dpt_out_channels": [8, 16, 32, 32], "dpt_layers": [0, 1, 0, 1]}
    })
}

/// The upstream key of a canonical name in each layout.
fn upstream(kind: ModelKind, new_naming: bool, name: &str) -> String {
    let swap = |from: &str, to: &str| name.strip_prefix(from).map(|r| format!("{to}{r}"));
    let llm = if new_naming { "model.language_model." } else { "model." };
    let visual = if new_naming { "model.visual." } else { "visual." };
    let (vggt, conn) = match kind {
        ModelKind::SpatialMllmV11 => ("spatial_encoder.vggt_model.", "connector."),
        ModelKind::SpatialMllmV10 => ("vggt.", "vggt_embedding_merger."),
        _ => ("", ""),
    };
    swap("llm.", llm).or_else(|| swap("visual.", visual)).or_else(|| swap("vggt.", vggt)).or_else(|| swap("connector.", conn)).unwrap()
}

/// Write a bf16 checkpoint in two safetensors files plus an index; returns the source values.
fn write_checkpoint(dir: &Path, kind: ModelKind, new_naming: bool, extra: &[(&str, Vec<usize>)], rng: &mut Rng) -> HashMap<String, Vec<f32>> {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = tiny_config();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let mut items: Vec<(String, Vec<usize>, Vec<half::bf16>)> = Vec::new();
    let mut values = HashMap::new();
    let mut push = |key: String, shape: Vec<usize>, rng: &mut Rng| {
        let v: Vec<f32> = rng.normals(shape.iter().product(), 0.05);
        let b: Vec<half::bf16> = v.iter().map(|&x| half::bf16::from_f32(x)).collect();
        values.insert(key.clone(), b.iter().map(|x| x.to_f32()).collect::<Vec<f32>>());
        items.push((key, shape, b));
    };
    for e in expected(kind, &cfg) {
        let key = if kind == ModelKind::Vggt { e.name.trim_start_matches("vggt.").to_string() } else { upstream(kind, new_naming, &e.name) };
        push(key, e.shape, rng);
    }
    for (k, s) in extra {
        push(k.to_string(), s.clone(), rng);
    }
    let half = items.len() / 2;
    let mut weight_map = serde_json::Map::new();
    for (fi, chunk) in [&items[..half], &items[half..]].iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", fi + 1);
        let views: Vec<(String, TensorView)> =
            chunk.iter().map(|(k, s, b)| (k.clone(), TensorView::new(Dtype::BF16, s.clone(), bytemuck::cast_slice(b)).unwrap())).collect();
        safetensors::serialize_to_file(views, None, &dir.join(&file)).unwrap();
        for (k, _, _) in chunk.iter() {
            weight_map.insert(k.clone(), file.clone().into());
        }
    }
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::json!({"weight_map": weight_map}).to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    values
}

fn opts(max_shard: u64) -> ConvertOptions {
    ConvertOptions { policy: Policy::default(), max_shard }
}

/// Largest |error| allowed relative to the tensor's largest |value|.
fn format_tol(f: WeightFormat) -> f32 {
    match f {
        WeightFormat::F32 => 1e-7,
        WeightFormat::F16 => 1e-3,
        WeightFormat::Q8 => 1.0 / 127.0,
        WeightFormat::Q4 => 1.0 / 8.0,
    }
}

fn roundtrip(kind: ModelKind, new_naming: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("hf"), tmp.path().join("pkg"));
    let mut rng = Rng::new(11);
    let extra: Vec<(&str, Vec<usize>)> = match kind {
        ModelKind::Vggt => vec![("track_head.fnet.norm.weight", vec![8])],
        ModelKind::QwenVl => vec![("lm_head.weight", vec![300, 64])],
        _ => vec![],
    };
    let values = write_checkpoint(&src, kind, new_naming, &extra, &mut rng);
    // Small shards force multi-shard packages and row-split tensors.
    let m = convert(&src, &dst, &opts(200 << 10), &mut |_| {}).unwrap();
    assert_eq!(m.model_kind, kind.id());
    assert!(m.shards.len() >= 2, "expected several shards, got {}", m.shards.len());
    if kind.has_llm() && kind.has_vggt() {
        assert!(m.tensors.values().any(|t| t.parts.len() > 1), "the connector matrix is split by rows");
    }
    assert_eq!(m.tokenizer.as_deref(), Some("tokenizer.json"));
    assert!(!m.tensors.contains_key("llm.lm_head.weight"), "the tied lm_head is not stored");
    assert!(m.tensors.keys().all(|k| !k.contains("track_head")), "the track head is skipped");
    let pkg = Package::open(&dst).unwrap();
    pkg.verify().unwrap();
    let cfg = tiny_config();
    for e in expected(kind, &cfg) {
        let t = &pkg.manifest.tensors[&e.name];
        let key = if kind == ModelKind::Vggt { e.name.trim_start_matches("vggt.").to_string() } else { upstream(kind, new_naming, &e.name) };
        let want = &values[&key];
        let got = pkg.read_tensor(&e.name).unwrap();
        let scale = want.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let err = got.iter().zip(want).fold(0f32, |a, (g, w)| a.max((g - w).abs()));
        assert!(err <= format_tol(t.format) * scale + 1e-7, "{}: {:?} error {err} vs scale {scale}", e.name, t.format);
    }
    // The same package on the GPU: every tensor present, split matrices in parts.
    let gpu = pollster::block_on(Gpu::new(GpuOptions::default())).expect("a GPU adapter");
    let mut shards_seen = 0;
    let loaded = pkg.load(&gpu, &mut |p| shards_seen = p.shards_done).unwrap();
    assert_eq!(shards_seen, pkg.manifest.shards.len());
    for (name, t) in &pkg.manifest.tensors {
        match &loaded[name] {
            GpuParam::Vector(v) => assert_eq!(v.numel(), t.cols, "{name}"),
            GpuParam::Matrix(parts) => {
                assert_eq!(parts.len(), t.parts.len(), "{name}");
                assert_eq!(parts.iter().map(|w| w.rows).sum::<usize>(), t.rows, "{name}");
            }
        }
    }
}

#[test]
fn converts_spatial_mllm_v11() {
    roundtrip(ModelKind::SpatialMllmV11, false);
}
#[test]
fn converts_spatial_mllm_v10() {
    roundtrip(ModelKind::SpatialMllmV10, false);
}
#[test]
fn converts_qwen_vl_new_naming_with_tied_head() {
    roundtrip(ModelKind::QwenVl, true);
}
#[test]
fn converts_vggt_without_track_head() {
    roundtrip(ModelKind::Vggt, false);
}

fn converted() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("hf"), tmp.path().join("pkg"));
    write_checkpoint(&src, ModelKind::SpatialMllmV11, false, &[], &mut Rng::new(5));
    convert(&src, &dst, &opts(200 << 10), &mut |_| {}).unwrap();
    (tmp, dst)
}

#[test]
fn corrupt_and_truncated_shards_are_caught() {
    let (_tmp, dst) = converted();
    let pkg = Package::open(&dst).unwrap();
    let shard = dst.join(&pkg.manifest.shards[1].file);
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&shard, &bytes).unwrap();
    let err = pkg.verify().unwrap_err();
    assert!(matches!(err, PackageError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&pkg.manifest.shards[1].file), "the error names the file: {err}");
    bytes.truncate(100);
    std::fs::write(&shard, &bytes).unwrap();
    let gpu = pollster::block_on(Gpu::new(GpuOptions::default())).expect("a GPU adapter");
    let err = pkg.load(&gpu, &mut |_| {}).err().unwrap();
    assert!(matches!(err, PackageError::Truncated { .. }), "{err}");
}

#[test]
fn newer_manifest_and_missing_tensor_are_rejected() {
    let (_tmp, dst) = converted();
    let path = dst.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["format_version"] = 99.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let err = Package::open(&dst).err().unwrap();
    assert!(matches!(err, PackageError::NewerFormat { found: 99, .. }), "{err}");
    std::fs::write(&path, &text).unwrap();
    let err = Package::open(&dst).unwrap().read_tensor("llm.layers.9.mlp.up_proj.weight").unwrap_err();
    assert!(matches!(err, PackageError::MissingTensor { .. }), "{err}");
}

#[test]
fn bad_checkpoints_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(3);
    // A checkpoint without one required tensor.
    let src = tmp.path().join("missing");
    write_checkpoint(&src, ModelKind::SpatialMllmV11, false, &[], &mut rng);
    let cfg_path = src.join("config.json");
    let mut cfg = tiny_config();
    cfg["num_hidden_layers"] = 3.into(); // the config asks for a layer the weights lack
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let err = convert(&src, &tmp.path().join("o1"), &opts(1 << 20), &mut |_| {}).unwrap_err();
    assert!(matches!(err, PackageError::MissingTensor { ref name, .. } if name.starts_with("llm.layers.2.")), "{err}");
    // A config whose sizes disagree with the weights.
    cfg["num_hidden_layers"] = 2.into();
    cfg["intermediate_size"] = 100.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let err = convert(&src, &tmp.path().join("o2"), &opts(1 << 20), &mut |_| {}).unwrap_err();
    assert!(matches!(err, PackageError::ShapeMismatch { .. }), "{err}");
    // An unknown layout.
    let odd = tmp.path().join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    let data = [0u8; 8];
    let views = vec![("encoder.layer.0.weight".to_string(), TensorView::new(Dtype::F32, vec![2], &data).unwrap())];
    safetensors::serialize_to_file(views, None, &odd.join("model.safetensors")).unwrap();
    let err = convert(&odd, &tmp.path().join("o3"), &opts(1 << 20), &mut |_| {}).unwrap_err();
    assert!(matches!(err, PackageError::UnknownLayout { .. }), "{err}");
}

#[test]
fn random_package_has_every_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_random(&tmp.path().join("r"), ModelKind::SpatialMllmV10, tiny_config(), &opts(1 << 20), 1, &mut |_| {}).unwrap();
    for e in expected(ModelKind::SpatialMllmV10, &tiny_config()) {
        assert_eq!(m.tensors[&e.name].shape, e.shape, "{}", e.name);
    }
    Package::open(&tmp.path().join("r")).unwrap().verify().unwrap();
}
