//! Helpers the tests share: a fixture's directory and reference outputs, a GPU on one precision
//! path, a fixture converted to an f32 package and loaded as a user's would be, and test videos.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};

use spatial_mllm_web::gpu::{Gpu, GpuOptions};
use spatial_mllm_web::model::Params;
use spatial_mllm_web::testing::reference_file::ReferenceFile;
use spatial_mllm_web::weights::convert::{convert, ConvertOptions};
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;

pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn reference(name: &str) -> ReferenceFile {
    ReferenceFile::new(std::fs::read(fixture_dir(name).join("reference.safetensors")).unwrap()).unwrap()
}

/// A device on the f16 path where the adapter allows it, else f32; no adapter fails the test.
pub fn gpu(allow_f16: bool) -> Gpu {
    pollster::block_on(Gpu::new(GpuOptions { allow_f16, allow_subgroups: true, allow_coop_matrix: true, poison: true })).expect("a GPU adapter")
}

/// The fixture converted to an f32 package with shards of at most `max_shard` bytes, loaded.
pub fn load_package(gpu: &Gpu, name: &str, max_shard: u64) -> (Params, Package) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("pkg");
    let opts = ConvertOptions { policy: Policy::parse("=f32").unwrap(), max_shard };
    convert(&fixture_dir(name), &dst, &opts, &mut |_| {}).unwrap();
    let pkg = Package::open(&dst).unwrap();
    (Params::new(pkg.load(gpu, &mut |_| {}).unwrap()), pkg)
}

/// The fixture as an f32 package (128 MiB shards): its parameters and config.
pub fn load_params(gpu: &Gpu, name: &str) -> (Params, serde_json::Value) {
    let (params, pkg) = load_package(gpu, name, 128 << 20);
    (params, pkg.manifest.config)
}

/// ffmpeg, quiet and overwriting (test videos and frames).
pub fn ffmpeg(args: &[&str]) {
    let ok = std::process::Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).status().expect("ffmpeg is installed (apt install ffmpeg)");
    assert!(ok.success(), "ffmpeg {args:?}");
}

/// Two short ScanNet scenes (6 frames of 112x84), `videos/scannet/scene000{1,2}_00.mp4`, as the
/// evaluation finds a sample's video from its dataset and scene.
pub fn scannet_videos(videos: &Path) {
    std::fs::create_dir_all(videos.join("scannet")).unwrap();
    for scene in ["scene0001_00", "scene0002_00"] {
        let v = videos.join("scannet").join(format!("{scene}.mp4"));
        ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=112x84:rate=4", "-frames:v", "6", "-pix_fmt", "yuv420p", v.to_str().unwrap()]);
    }
}
