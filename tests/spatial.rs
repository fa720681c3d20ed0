//! Spatial-MLLM against the upstream code on the tiny v1.0 and v1.1 fixtures, natively; the check
//! lives in `spatial_mllm_web::testing::spatial_parity` and runs in the browser harness too.

mod common;

use spatial_mllm_web::gpu::{Gpu, Recorder};
use spatial_mllm_web::model::qwen::vision_layout::Grid;
use spatial_mllm_web::model::spatial::{SpatialMllm, VideoInput};
use spatial_mllm_web::testing::spatial_parity::{self, SpatialFixture};

fn load(gpu: &Gpu, name: &str) -> (SpatialMllm, SpatialFixture) {
    load_sharded(gpu, name, 128 << 20)
}

fn load_sharded(gpu: &Gpu, name: &str, max_shard: u64) -> (SpatialMllm, SpatialFixture) {
    let (params, pkg) = common::load_package(gpu, name, max_shard);
    let model = pollster::block_on(SpatialMllm::new(gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).unwrap();
    let read = |f: &str| std::fs::read(common::fixture_dir(name).join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let fx = SpatialFixture::new(read("reference.safetensors"), &String::from_utf8(read("reference.json")).unwrap(), &read("tokenizer.json")).unwrap();
    (model, fx)
}

#[test]
fn v11_matches_upstream_from_frames_to_answer() {
    let gpu = common::gpu(false);
    let (model, fx) = load(&gpu, "spatial-mllm-v1.1");
    for name in spatial_parity::CHECKS {
        println!("{name}: {}", pollster::block_on(spatial_parity::run_check(&gpu, &fx, &model, name)).unwrap());
    }
}

#[test]
fn v10_matches_upstream_from_frames_to_answer() {
    let gpu = common::gpu(false);
    let (model, fx) = load(&gpu, "spatial-mllm-v1.0");
    println!("{}", pollster::block_on(spatial_parity::check_video(&gpu, &fx, &model)).unwrap());
}

/// The real connector's first matrix (16 384 x 16 384) is larger than a shard and is stored in
/// row parts: with 512 KiB shards the tiny connector's (512 x 512 f32) is split the same way.
#[test]
fn v11_with_the_connector_matrix_split_into_parts() {
    let gpu = common::gpu(false);
    let (model, fx) = load_sharded(&gpu, "spatial-mllm-v1.1", 512 << 10);
    println!("{}", pollster::block_on(spatial_parity::check_video(&gpu, &fx, &model)).unwrap());
}

/// Long videos run the connector in passes of merged tokens (each pass's 8·channels-wide rows
/// within one binding): forced here at the tiny size, both generations still match upstream.
#[test]
fn connector_in_passes_matches_upstream() {
    let gpu = common::gpu(false);
    for name in ["spatial-mllm-v1.0", "spatial-mllm-v1.1"] {
        let (mut model, fx) = load(&gpu, name);
        model.spatial.as_mut().expect("a spatial encoder").connector.rows_per_pass = 5;
        println!("{name}: {}", pollster::block_on(spatial_parity::check_video(&gpu, &fx, &model)).unwrap());
    }
}

/// A package of another kind is refused with a message that names the kind (a Qwen2.5-VL package
/// is accepted: it runs without the spatial encoder, see tests/qwen_session.rs).
#[test]
fn wrong_model_kind_is_a_clear_error() {
    let gpu = common::gpu(false);
    let (params, pkg) = common::load_package(&gpu, "vggt", 128 << 20);
    let e = pollster::block_on(SpatialMllm::new(&gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).err().expect("a VGGT package is not Spatial-MLLM");
    assert!(e.to_string().contains("\"vggt\" is neither a Spatial-MLLM checkpoint"), "{e}");
}

/// Issue 17: the connector runs in passes of at most `PASS_BYTES` (three at 16 frames of
/// 644x476) to bound memory. A pass of more rows than the GEMV path takes computes each row as
/// one pass does: the fused tokens are bit-identical, on both precision paths.
#[test]
fn connector_passes_are_bit_identical_to_one_pass() {
    for f16 in [false, true] {
        let gpu = common::gpu(f16);
        let (mut model, fx) = load(&gpu, "spatial-mllm-v1.1");
        let (vit, vggt) = fx.inputs().unwrap();
        let [t, h, w] = vit.grid_thw;
        let input = VideoInput { vit_patches: &vit.pixel_values, grid: Grid { t, h, w }, frames: vggt.as_frames() };
        let mut fused = |rows_per_pass| {
            model.spatial.as_mut().expect("a spatial encoder").connector.rows_per_pass = rows_per_pass;
            let mut rec = Recorder::new(&gpu);
            let out = model.encode_video(&mut rec, &input, None).unwrap();
            rec.submit().unwrap();
            (pollster::block_on(gpu.read_bytes(&out, 0, out.bytes())).unwrap(), out.rows())
        };
        let (one, tokens) = fused(usize::MAX);
        for rows in [10, 7] {
            assert!(tokens > rows && fused(rows).0 == one, "[{:?}] passes of {rows} rows differ from one pass of {tokens}", gpu.act);
        }
    }
}
