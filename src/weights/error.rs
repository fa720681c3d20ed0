//! Errors of the model package: each names the file or tensor and what to do.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PackageError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{file} is truncated: {got} bytes, the manifest says {expected}. Delete it and download or convert again")]
    Truncated { file: String, expected: u64, got: u64 },
    #[error("{file} is corrupt: SHA-256 {got}, the manifest says {expected}. Delete it and download or convert again")]
    HashMismatch { file: String, expected: String, got: String },
    #[error("{file} has package format {found}, this build reads up to {supported}: update the engine")]
    NewerFormat { file: String, found: u32, supported: u32 },
    #[error("{file}: invalid manifest: {msg}")]
    BadManifest { file: String, msg: String },
    #[error("tensor {name} is missing from {file}")]
    MissingTensor { name: String, file: String },
    #[error("tensor {name} has shape {got:?} but the config and the checkpoint's other tensors imply {expected:?}: the checkpoint disagrees with its config.json or with itself")]
    ShapeMismatch { name: String, expected: Vec<usize>, got: Vec<usize> },
    /// Tensors that agree with each other but describe a model that cannot run.
    #[error("{file}: {msg}")]
    Structure { file: String, msg: String },
    #[error("{dir} holds an unsupported architecture ({arch}): its keys, like {sample:?}, match none of Spatial-MLLM v1.0 (vggt., vggt_embedding_merger.), v1.1 (spatial_encoder.vggt_model., connector.), Qwen2.5-VL (visual., model.) or VGGT-1B (aggregator.). Choose one of those checkpoints")]
    UnknownLayout { dir: String, arch: String, sample: Vec<String> },
    #[error("{file}: {msg}")]
    Safetensors { file: String, msg: String },
    #[error("{what}: unsupported dtype {dtype} (expected BF16, F16 or F32)")]
    Dtype { what: String, dtype: String },
    #[error("invalid policy rule {0:?}: expected PREFIX=FORMAT with FORMAT one of f32, f16, q8, q4")]
    Policy(String),
    #[error("downloading {url} failed: {msg}. Check the URL and the connection; a retry resumes where it stopped")]
    Http { url: String, msg: String },
    #[error("the browser cache could not store the model: {0}. Free space (delete cached models) or allow more storage; the model still runs but will download again next time")]
    Cache(String),
    #[error("{url} holds a package of kind {found}, but {wanted} is needed here: check the URL")]
    WrongKind { url: String, found: String, wanted: String },
    #[error("GPU: {0}")]
    Gpu(#[from] crate::gpu::GpuError),
}

pub type PResult<T> = std::result::Result<T, PackageError>;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn io_err(path: impl AsRef<std::path::Path>) -> impl FnOnce(std::io::Error) -> PackageError {
    let path = path.as_ref().display().to_string();
    move |source| PackageError::Io { path, source }
}
