//! Models on the engine: parameters by name, the Qwen2.5-VL language model and vision encoder.

pub mod error;
pub mod params;
pub mod qwen;
pub mod spatial;
pub mod vggt;

pub use error::{ModelError, MResult};
pub use params::Params;
