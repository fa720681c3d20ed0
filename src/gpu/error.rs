//! Errors of the GPU runtime. Each one says what went wrong and what the user can do about it.

use thiserror::Error;

#[derive(Debug, Error, Clone)]
pub enum GpuError {
    #[error("no GPU adapter found ({0}). Natively install a Vulkan/Metal/DX12 driver (on Debian: apt-get install mesa-vulkan-drivers libvulkan1); in a browser enable WebGPU")]
    NoAdapter(String),
    #[error("the GPU device could not be created: {0}")]
    RequestDevice(String),
    #[error("the GPU device was lost ({0}); the engine must be restarted, weights reloaded from the cache")]
    DeviceLost(String),
    #[error("GPU validation error: {0}")]
    Validation(String),
    #[error("GPU out of memory: {0}. Try fewer frames, a smaller model, or close other GPU-heavy tabs")]
    OutOfMemory(String),
    #[error("{what} needs a {bytes}-byte buffer binding, but this adapter allows at most {limit} bytes; split the tensor by rows")]
    BindingTooLarge { what: String, bytes: u64, limit: u64 },
    /// Refused before any GPU work: the work's largest buffer exceeds the adapter's limits.
    #[error("{what} needs a buffer of {bytes} bytes, but this GPU allows at most {limit} bytes in one buffer: use fewer frames or a smaller resolution")]
    WorkTooLarge { what: String, bytes: u64, limit: u64 },
    #[error("shape error in {kernel}: {msg}")]
    Shape { kernel: &'static str, msg: String },
    #[error("readback failed: {0}")]
    Readback(String),
    #[error("the GPU did not finish within {0} s; the device may be hung or far too slow for this work")]
    Timeout(u64),
    #[error("the adapter lacks feature {0}")]
    MissingFeature(&'static str),
}

pub type Result<T> = std::result::Result<T, GpuError>;

/// Shorthand for shape errors raised by kernel launchers.
pub fn shape_err(kernel: &'static str, msg: impl Into<String>) -> GpuError {
    GpuError::Shape { kernel, msg: msg.into() }
}
