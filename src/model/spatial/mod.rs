//! Spatial-MLLM (spec sections 1 to 5): Qwen2.5-VL's ViT and VGGT's aggregator see the same frames;
//! the connector's spatial embeddings are added to the ViT's merged tokens, which replace the
//! prompt's video pad tokens; the Qwen2.5 decoder answers. A plain Qwen2.5-VL package runs as the
//! same model without the spatial encoder (VGGT and the connector). `pipeline` is the one sequence
//! (grid, context, encoding, session, streamed answers) that the CLI, the web engine and the
//! benchmarks call.

pub mod connector;
pub mod frame_sampler;
pub mod memory;
pub mod model;
pub mod pipeline;
pub mod sampling;
pub mod session;

pub use connector::{Connector, Generation};
pub use model::{SpatialEncoder, SpatialMllm, VideoInput, VisualTaps};
pub use pipeline::{open_session, Opened, Reply, Visual};
pub use session::{PromptIds, VideoSession};
