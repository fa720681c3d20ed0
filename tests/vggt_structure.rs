//! The converter reads VGGT's structure from the checkpoint's tensors (`weights::structure`): a
//! tiny VGGT whose DINO patch embedding has fewer blocks than its aggregator (3 vs 4), other MLP
//! widths, a 2-block camera trunk and no config.json converts, its package's config records both
//! depths, and the model built from the package runs.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use spatial_mllm_web::gpu::{Gpu, GpuOptions, Recorder};
use spatial_mllm_web::model::vggt::{AggregatorTaps, Frames, GeometrySource, Vggt};
use spatial_mllm_web::model::Params;
use spatial_mllm_web::weights::convert::{convert, ConvertOptions};
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;
use spatial_mllm_web::weights::shapes::expected;
use spatial_mllm_web::weights::PackageError;

/// The sizes the checkpoint is written with; the converter sees only its tensors.
fn structure() -> serde_json::Value {
    serde_json::json!({"embed_dim": 32, "depth": 4, "dino_depth": 3, "num_heads": 2, "mlp_hidden": 96,
        "dino_mlp_hidden": 64, "patch_size": 14, "img_size": 28, "num_register_tokens": 2,
        "camera_trunk_depth": 2, "camera_mlp_hidden": 128,
        "dpt_features": 8, "dpt_out_channels": [8, 16, 32, 32], "dpt_layers": [0, 1, 2, 3]})
}

/// Small deterministic values (uniform in ±0.05; norms near 1, LayerScale near 0.1).
fn values(name: &str, n: usize, seed: &mut u64) -> Vec<f32> {
    let base = if name.contains("norm") && name.ends_with(".weight") { 1.0 } else { 0.0 };
    let scale = if name.ends_with(".gamma") { 2.0 } else { 1.0 };
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            base + scale * 0.1 * (((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5)
        })
        .collect()
}

/// An upstream VGGT checkpoint (`aggregator.*`, `camera_head.*`, with `dpt` also `depth_head.*`,
/// `point_head.*`) in one f32 file, without config.json.
fn write_checkpoint(dir: &Path, dpt: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut seed = 17;
    let items: Vec<(String, Vec<usize>, Vec<f32>)> = expected(ModelKind::Vggt, &structure())
        .into_iter()
        .filter(|e| dpt || !(e.name.starts_with("vggt.depth_head.") || e.name.starts_with("vggt.point_head.")))
        .map(|e| {
            let v = values(&e.name, e.shape.iter().product(), &mut seed);
            (e.name.trim_start_matches("vggt.").to_string(), e.shape, v)
        })
        .collect();
    let views: Vec<(String, TensorView)> =
        items.iter().map(|(k, s, v)| (k.clone(), TensorView::new(Dtype::F32, s.clone(), bytemuck::cast_slice(v)).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

fn convert_to(src: &Path, dst: &Path) -> Result<Package, PackageError> {
    let opts = ConvertOptions { policy: Policy::parse("=f32").unwrap(), max_shard: 256 << 10 };
    convert(src, dst, &opts, &mut |_| {})?;
    Package::open(dst)
}

fn gpu() -> Gpu {
    pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, allow_coop_matrix: true, poison: true })).expect("a GPU adapter")
}

/// The package loaded as the CLI loads it: the model's structure from the manifest's config.
fn model(gpu: &Gpu, pkg: &Package) -> Vggt {
    let params = Params::new(pkg.load(gpu, &mut |_| {}).unwrap());
    pollster::block_on(Vggt::new(gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).unwrap()
}

/// Two frames of 28 x 42 px (a 2 x 3 patch grid; the position table is 2 x 2).
fn frames() -> Vec<f32> {
    (0..2 * 3 * 28 * 42).map(|i| ((i * 37) % 101) as f32 / 100.0).collect()
}

#[test]
fn structure_comes_from_the_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    write_checkpoint(&src, false);
    let pkg = convert_to(&src, &tmp.path().join("pkg")).unwrap();
    let cfg = &pkg.manifest.config;
    assert_eq!(cfg.as_object().unwrap().keys().collect::<Vec<_>>(), ["vggt_config"], "only the derived sizes are added");
    let v = &cfg["vggt_config"];
    for (key, want) in [
        ("embed_dim", 32),
        ("depth", 4),
        ("dino_depth", 3),
        ("num_heads", 2),
        ("mlp_hidden", 96),
        ("dino_mlp_hidden", 64),
        ("img_size", 28),
        ("num_register_tokens", 2),
        ("camera_trunk_depth", 2),
        ("camera_mlp_hidden", 128),
        ("camera_num_heads", 16),
    ] {
        assert_eq!(v[key], want, "vggt_config.{key}: {v}");
    }

    let gpu = gpu();
    let vggt = model(&gpu, &pkg);
    let dims = &vggt.aggregator.dims;
    assert_eq!((dims.dino_depth, dims.depth), (3, 4));
    let px = frames();
    let f = Frames { pixels: &px, count: 2, height: 28, width: 42 };
    let mut rec = Recorder::new(&gpu);
    let mut taps = AggregatorTaps::default();
    let out = vggt.aggregator.forward(&mut rec, &f, &[3], Some(&mut taps)).unwrap();
    assert_eq!((taps.dino_blocks.len(), taps.frame_blocks.len(), taps.global_blocks.len()), (3, 4, 4));
    let head = vggt.camera.as_ref().expect("the camera head");
    assert_eq!((head.cfg.depth, head.cfg.mlp, head.cfg.heads), (2, 128, 16));
    let pose = head.forward(&mut rec, &out.layers[0].1.reshape(&[2, out.tokens, dims.dim])).unwrap();
    rec.submit().unwrap();
    let pose = pollster::block_on(gpu.read_f32(&pose)).unwrap();
    let last = pollster::block_on(gpu.read_f32(&out.layers[0].1.global)).unwrap();
    assert_eq!(pose.len(), 2 * 9);
    assert!(pose.iter().chain(&last).all(|x| x.is_finite()), "pose {pose:?}");
    assert!(vggt.depth.is_none() && vggt.point.is_none());
}

/// The DPT heads' layers are in no shape: without a config VGGT-1B's (4, 11, 17, 23) do not fit
/// a 4-layer aggregator, a clear error; a config.json naming only them is enough.
#[test]
fn dpt_layers_come_from_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    write_checkpoint(&src, true);
    let err = convert_to(&src, &tmp.path().join("bad")).err().expect("dpt_layers beyond the aggregator");
    assert!(matches!(err, PackageError::Structure { .. }) && err.to_string().contains("dpt_layers"), "{err}");
    std::fs::write(src.join("config.json"), r#"{"dpt_layers": [0, 1, 3, 3]}"#).unwrap();
    let pkg = convert_to(&src, &tmp.path().join("pkg")).unwrap();
    let v = &pkg.manifest.config["vggt_config"];
    assert_eq!((&v["dpt_layers"], &v["dino_depth"], &v["dpt_features"]), (&serde_json::json!([0, 1, 3, 3]), &3.into(), &8.into()));

    let gpu = gpu();
    let vggt = model(&gpu, &pkg);
    let px = frames();
    let f = Frames { pixels: &px, count: 2, height: 28, width: 42 };
    let cloud = pollster::block_on(vggt.point_cloud(&gpu, &f, GeometrySource::DepthAndCameras)).unwrap();
    assert_eq!((cloud.frames, cloud.height, cloud.width), (2, 28, 42));
    assert_eq!(cloud.points.len(), 2 * 28 * 42 * 3);
    assert!(cloud.points.iter().chain(&cloud.conf).all(|x| x.is_finite()));
}
