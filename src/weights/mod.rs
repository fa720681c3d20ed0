//! Weights: block quantisation formats, the model package (manifest + safetensors shards), the
//! converter from upstream checkpoints and the loaders.

pub mod conversion;
pub mod error;
pub mod layout;
pub mod manifest;
pub mod package_layout;
pub mod packer;
pub mod policy;
pub mod quant;
pub mod sha;
pub mod shapes;
pub mod source;
pub mod structure;
#[cfg(not(target_arch = "wasm32"))]
pub mod parallel;
#[cfg(not(target_arch = "wasm32"))]
pub mod writer;

pub use error::{PResult, PackageError};
pub use manifest::Manifest;
pub use quant::{PackedWeight, Weight, WeightFormat, BLOCK};
#[cfg(not(target_arch = "wasm32"))]
pub mod convert;
#[cfg(not(target_arch = "wasm32"))]
pub mod package;
pub mod loader;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod http;
