//! Errors of the hub client: each says what went wrong and what to do about it.

use thiserror::Error;

use crate::weights::PackageError;

#[derive(Debug, Error)]
pub enum HubError {
    #[error("{arg:?} is neither an existing local path nor a Hugging Face repository id (ORG/NAME or ORG/NAME@REVISION)")]
    BadId { arg: String },
    #[error("repository {id} not found on {endpoint}: check the id (ORG/NAME, as in {endpoint}/ORG/NAME) and the endpoint (HF_ENDPOINT)")]
    RepoNotFound { id: String, endpoint: String },
    #[error("revision {revision:?} of {id} not found on {endpoint}: use a branch, tag or commit that exists (see {endpoint}/{id}/tree/main)")]
    RevisionNotFound { id: String, revision: String, endpoint: String },
    #[error("{}", access_message(.id, .endpoint, *.status, *.gated, *.has_token))]
    Access { id: String, endpoint: String, status: u16, gated: bool, has_token: bool },
    #[error("{file} is missing from {id} at revision {revision}: the repository is incomplete or not a model checkpoint (see {endpoint}/{id}/tree/{revision})")]
    FileMissing { id: String, revision: String, file: String, endpoint: String },
    #[error("{id} holds no .safetensors weights (files: {files}): spatial-mllm converts safetensors checkpoints of Spatial-MLLM v1.0 / v1.1, Qwen2.5-VL and VGGT")]
    NoWeights { id: String, files: String },
    #[error("{id} is a {architecture} checkpoint, which spatial-mllm cannot run (its tensor names, like {sample:?}, match no supported layout). Supported: Spatial-MLLM v1.0 and v1.1 (Diankun/Spatial-MLLM-*), Qwen2.5-VL (Qwen/Qwen2.5-VL-*) and VGGT (facebook/VGGT-1B). Nothing was downloaded but the config and the weights' headers")]
    Unsupported { id: String, architecture: String, sample: Vec<String> },
    #[error("not enough space on the disk of {path}: the download needs {}{}. Free space, or point HF_HUB_CACHE (downloads) and SPATIAL_MLLM_CACHE (converted packages) at a larger disk; a rerun resumes", human_bytes(*.needed), .available.map(|a| format!(", {} are free", human_bytes(a))).unwrap_or_default())]
    DiskFull { path: String, needed: u64, available: Option<u64> },
    #[error("downloading {url} failed after {attempts} attempts: {msg}. Check the connection and HF_ENDPOINT; running again resumes where it stopped")]
    Http { url: String, status: Option<u16>, msg: String, attempts: u32 },
    #[error(
        "{file} of {id} is corrupt after two downloads: SHA-256 {got}, the hub says {expected}. Run again; if it persists, a proxy or the repository is at fault"
    )]
    Corrupt { id: String, file: String, expected: String, got: String },
    #[error("{file} of {id} has {got} bytes, the hub says {expected}: run again to download it anew")]
    SizeMismatch { id: String, file: String, expected: u64, got: u64 },
    #[error("{id}@{revision} has no converted package in the cache and HF_HUB_OFFLINE is set: run once with network access (unset HF_HUB_OFFLINE)")]
    Offline { id: String, revision: String },
    #[error("{url}: unexpected answer: {msg}")]
    BadResponse { url: String, msg: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Package(#[from] PackageError),
}

pub type HResult<T> = Result<T, HubError>;

fn access_message(id: &str, endpoint: &str, status: u16, gated: bool, has_token: bool) -> String {
    let tokens = format!("{endpoint}/settings/tokens");
    match (gated, has_token) {
        (true, false) => format!(
            "{id} is a gated repository (HTTP {status}): accept its licence at {endpoint}/{id} while logged in, then set HF_TOKEN to a read token from {tokens}"
        ),
        (true, true) => format!(
            "{id} is a gated repository and the token in HF_TOKEN has no access to it (HTTP {status}): accept its licence at {endpoint}/{id} with the account the token belongs to (access may also await the authors' approval), or use a read token from {tokens} of an account that has access"
        ),
        (false, false) => format!(
            "{id} is private or does not exist (HTTP {status}): if it is private, set HF_TOKEN to a read token from {tokens} of an account that can read {endpoint}/{id}; else check the id"
        ),
        (false, true) => format!(
            "{id} is private and the token in HF_TOKEN does not grant access to it, or the token is invalid (HTTP {status}): use a read token from {tokens} of an account that can read {endpoint}/{id}"
        ),
    }
}

pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{n} bytes")
    }
}

pub(crate) fn io_err(path: impl AsRef<std::path::Path>) -> impl FnOnce(std::io::Error) -> HubError {
    let path = path.as_ref().display().to_string();
    move |source| HubError::Io { path, source }
}
