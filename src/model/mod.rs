//! Models on the engine: parameters by hierarchical name, layers as modules, the Qwen2.5-VL
//! language model and vision encoder, VGGT and Spatial-MLLM's connector.

pub mod error;
pub mod layers;
pub mod params;
pub mod qwen;
pub mod spatial;
pub mod vggt;

pub use error::{ModelError, MResult};
pub use params::{Params, Scope};
