//! Qwen2.5-VL as Spatial-MLLM uses it (spec sections 5.3, 5.6, 5.7 and 6).

pub mod chat;
pub mod config;
pub mod decode_choice;
pub mod decode_plan;
pub mod generate;
pub mod kv_cache;
pub mod rope_index;
pub mod text;
pub mod vision;
pub mod vision_layout;

pub use config::{QwenConfig, SpecialTokens, TextConfig, VisionConfig};
pub use decode_choice::{DecodeChoice, DecodeSteps};
pub use decode_plan::{DecodeKernels, DecodePlan};
pub use kv_cache::KvCache;
pub use text::TextModel;
pub use vision::VisionModel;
