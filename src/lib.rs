//! Spatial-MLLM for the web: a WebGPU inference engine with hand-written WGSL kernels that runs
//! natively (wgpu on Vulkan / Metal / DX12) and in the browser (wasm + WebGPU).

#[cfg(all(not(target_arch = "wasm32"), feature = "cli"))]
pub mod bench;
pub mod eval;
pub mod gpu;
pub mod kernels;
pub mod model;
#[cfg(all(not(target_arch = "wasm32"), feature = "cli"))]
pub mod native;
pub mod preprocess;
pub mod rng;
#[cfg(feature = "testing")]
pub mod testing;
pub mod weights;

#[cfg(feature = "web")]
pub mod web;
#[cfg(feature = "web")]
pub mod web_engine;
#[cfg(all(feature = "web", feature = "testing"))]
pub mod web_suites;
#[cfg(feature = "web")]
pub mod web_convert;
#[cfg(feature = "web")]
pub mod web_tuning_store;
