//! Errors of the native answering path and the command line: each names the problem and what to
//! do about it, and `class()` (the `Classify` trait, for every error type the command line meets)
//! says whose it is (the input, the model or its package, or the GPU), which picks the exit code.

use crate::bench::BenchError;
use crate::eval::{BadShard, ShardError};
use crate::gpu::GpuError;
use crate::model::ModelError;
use crate::native::hub::HubError;
use crate::native::video::VideoError;
use crate::preprocess::PreprocessError;
use crate::weights::PackageError;

/// Whose problem a failure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input or the arguments: a path, a video, a question, options.
    BadInput,
    /// The model or its package: missing, corrupt, of the wrong kind, not matching its config.
    Model,
    /// The GPU: no adapter, a lost device, out of memory.
    Gpu,
}

/// Exit code of anything unexpected (a panic, an internal error): 1, as most tools use it.
pub const EXIT_UNEXPECTED: i32 = 1;
/// Exit code of a check that a command makes and that failed (`bench soak`: memory grew past its
/// bound, or an answer differed from a fresh session's).
pub const EXIT_CHECK_FAILED: i32 = 5;

impl ErrorClass {
    /// The command line's exit code: 2 bad input (clap's usage errors exit with 2 too), 3 the
    /// model or its package, 4 the GPU.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorClass::BadInput => 2,
            ErrorClass::Model => 3,
            ErrorClass::Gpu => 4,
        }
    }
}

/// Errors that know whose problem they are.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error("give a video file, a folder of frames, or image files")]
    NoInput,
    #[error("{path}: no such image file")]
    NoSuchImage { path: String },
    #[error("{path}: several inputs must all be .png / .jpg images (a video is given alone)")]
    MixedInputs { path: String },
    #[error("{path}: no such file or folder")]
    NotFound { path: String },
    #[error("{path}: no .png / .jpg frames in this folder")]
    NoFrames { path: String },
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// `--frames 0`: nothing to encode (a video's own length is never the problem here).
    #[error("zero frames were asked for (--frames 0): ask for at least 2 (16, as the paper does)")]
    ZeroFrames,
    /// Options that do not go together (the message says which and what to give).
    #[error("{0}")]
    Arguments(String),
    #[error("{dir}: the package has no tokenizer.json: convert the checkpoint with its tokenizer")]
    NoTokenizer { dir: String },
    #[error("{file}: {source}")]
    ReadTokenizer { file: String, source: std::io::Error },
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Hub(#[from] HubError),
}

pub type NResult<T> = Result<T, NativeError>;

impl Classify for ModelError {
    fn class(&self) -> ErrorClass {
        match self {
            ModelError::Gpu(_) => ErrorClass::Gpu,
            ModelError::Input(_) | ModelError::Cancelled => ErrorClass::BadInput,
            ModelError::MissingParam(_) | ModelError::ParamShape { .. } | ModelError::Config(_) | ModelError::Tokenizer(_) => ErrorClass::Model,
        }
    }
}

impl Classify for PackageError {
    fn class(&self) -> ErrorClass {
        match self {
            PackageError::Gpu(_) => ErrorClass::Gpu,
            // `--policy` is an argument, not the package.
            PackageError::Policy(_) => ErrorClass::BadInput,
            _ => ErrorClass::Model,
        }
    }
}

impl Classify for GpuError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Gpu
    }
}

impl Classify for HubError {
    fn class(&self) -> ErrorClass {
        match self {
            HubError::BadId { .. } => ErrorClass::BadInput,
            HubError::Package(e) => e.class(),
            // A repository that is missing, gated, unsupported, or failed to download: the model.
            _ => ErrorClass::Model,
        }
    }
}

impl Classify for VideoError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

impl Classify for PreprocessError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

/// Shard values and shard results files are the user's input.
impl Classify for BadShard {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

impl Classify for ShardError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

impl Classify for BenchError {
    fn class(&self) -> ErrorClass {
        match self {
            BenchError::Model(e) => e.class(),
            // Rows, probes and floors fail on the GPU (a row's set-up allocates its buffers there).
            BenchError::Probe(_) | BenchError::RowSetup { .. } | BenchError::Row { .. } | BenchError::Gpu(_) => ErrorClass::Gpu,
        }
    }
}

impl Classify for NativeError {
    fn class(&self) -> ErrorClass {
        match self {
            NativeError::NoInput
            | NativeError::NoSuchImage { .. }
            | NativeError::MixedInputs { .. }
            | NativeError::NotFound { .. }
            | NativeError::NoFrames { .. }
            | NativeError::Read { .. }
            | NativeError::ZeroFrames
            | NativeError::Arguments(_)
            | NativeError::Video(_)
            | NativeError::Preprocess(_) => ErrorClass::BadInput,
            NativeError::NoTokenizer { .. } | NativeError::ReadTokenizer { .. } => ErrorClass::Model,
            NativeError::Package(e) => e.class(),
            NativeError::Model(e) => e.class(),
            NativeError::Gpu(_) => ErrorClass::Gpu,
            NativeError::Hub(e) => e.class(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_tell_input_model_and_gpu_apart() {
        assert_eq!(NativeError::NoInput.class(), ErrorClass::BadInput);
        assert_eq!(NativeError::from(ModelError::Input("x".into())).class(), ErrorClass::BadInput);
        assert_eq!(NativeError::from(ModelError::MissingParam("w".into())).class(), ErrorClass::Model);
        assert_eq!(NativeError::from(ModelError::Gpu(GpuError::DeviceLost("gone".into()))).class(), ErrorClass::Gpu);
        assert_eq!(NativeError::from(GpuError::OutOfMemory("x".into())).class(), ErrorClass::Gpu);
        assert_eq!(NativeError::NoTokenizer { dir: "pkg".into() }.class(), ErrorClass::Model);
        assert_eq!(NativeError::ZeroFrames.class(), ErrorClass::BadInput);
        assert_eq!(PackageError::Policy("x".into()).class(), ErrorClass::BadInput);
        assert_eq!(NativeError::from(PackageError::Truncated { file: "s".into(), expected: 2, got: 1 }).class(), ErrorClass::Model);
        assert_eq!(NativeError::from(HubError::BadId { arg: "a b".into() }).class(), ErrorClass::BadInput);
        assert_eq!(BenchError::Model(ModelError::Config("c".into())).class(), ErrorClass::Model);
        // Distinct exit codes, none of them 1 (unexpected) or 5 (a failed check).
        let codes = [ErrorClass::BadInput, ErrorClass::Model, ErrorClass::Gpu].map(ErrorClass::exit_code);
        assert_eq!(codes, [2, 3, 4]);
        assert!(!codes.contains(&EXIT_UNEXPECTED) && !codes.contains(&EXIT_CHECK_FAILED));
        // Messages stay what they were.
        assert_eq!(NativeError::NotFound { path: "a.mp4".into() }.to_string(), "a.mp4: no such file or folder");
    }
}
