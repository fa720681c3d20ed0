//! GPU runtime: one negotiated device, buffers and their pool, shader variants and the pipeline
//! cache, a recorder that batches a whole forward pass into one submission, async readback.

mod attention_pick;
mod bind_cache;
mod buffer;
pub mod clock;
mod contract;
mod device;
pub mod error;
mod gemm_tile;
mod pipelines;
mod readback;
mod recorder;
mod shader;
mod stats;
mod tensor;
mod timer;

pub use attention_pick::{AttentionPick, PlainAttention, BLOCKED_STORAGE};
pub use buffer::{BufferPool, GpuBuffer};
pub use contract::{Access, Contract, Entry, Launch, Slot, UniformParams, WgslScalar, WorkgroupOf};
pub use device::{CoopMatrixShape, Gpu, GpuInfo, GpuOptions, MemoryTally};
pub use error::{GpuError, Result};
pub use gemm_tile::{GemmChoice, GemmTile, TileSource};
pub use pipelines::Pipeline;
pub use readback::Staged;
pub use recorder::{flat_groups as recorder_flat_groups, Binding, Recorder};
pub use shader::{ShaderSource, Variant};
pub use stats::{GpuStats, StatsSnapshot};
pub use tensor::{DType, Tensor};
pub use timer::GpuTimer;
