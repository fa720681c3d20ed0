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
    #[error("{}", quota_message(*needed, *free))]
    QuotaExceeded { needed: u64, free: Option<u64> },
    #[error("the browser cache could not store the model: {0}. Free space (delete cached models) or allow more storage; the model still runs but will download again next time")]
    Cache(String),
    #[error("{url} holds a package of kind {found}, but {wanted} is needed here: check the URL")]
    WrongKind { url: String, found: String, wanted: String },
    #[error("GPU: {0}")]
    Gpu(#[from] crate::gpu::GpuError),
}

/// Bytes as people read them (as the page's hub messages write them).
fn mb(b: u64) -> String {
    if b >= 1_000_000_000 {
        format!("{:.1} GB", b as f64 / 1e9)
    } else {
        format!("{:.1} MB", b as f64 / 1e6)
    }
}

/// A full quota while a package is cached: what is needed and what to do. The model itself still
/// runs (it is on the GPU); only the next visit's load is affected.
fn quota_message(needed: u64, free: Option<u64>) -> String {
    let free = free.map(|f| format!(" ({} free)", mb(f))).unwrap_or_default();
    format!(
        "the browser's storage for this site is full{free}: keeping this model needs {} more. Free {} in the site settings or delete cached models, then load it again: the shards already kept are not downloaded again; the model runs now but is not kept for next time",
        mb(needed),
        mb(needed)
    )
}

pub type PResult<T> = std::result::Result<T, PackageError>;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn io_err(path: impl AsRef<std::path::Path>) -> impl FnOnce(std::io::Error) -> PackageError {
    let path = path.as_ref().display().to_string();
    move |source| PackageError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::PackageError;

    #[test]
    fn a_full_quota_names_the_space_needed_and_what_to_do() {
        let m = PackageError::QuotaExceeded { needed: 1_530_000, free: Some(200_000) }.to_string();
        assert!(m.starts_with("the browser's storage for this site is full (0.2 MB free): keeping this model needs 1.5 MB more."), "{m}");
        assert!(m.contains("Free 1.5 MB in the site settings or delete cached models"), "{m}");
        let m = PackageError::QuotaExceeded { needed: 4_100_000_000, free: None }.to_string();
        assert!(m.contains("full: keeping this model needs 4.1 GB more. Free 4.1 GB"), "{m}");
    }
}
