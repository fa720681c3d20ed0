//! Helpers the model tests share: a fixture's directory and reference outputs, a GPU on one
//! precision path, and a fixture converted to an f32 package and loaded as a user's would be.
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
