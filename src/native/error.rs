//! Errors of the native answering path and the command line: each names the problem and what to
//! do about it, and `class()` says whose it is (the input, the model or its package, or the GPU).

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

fn model_class(e: &ModelError) -> ErrorClass {
    match e {
        ModelError::Gpu(_) => ErrorClass::Gpu,
        ModelError::Input(_) | ModelError::Cancelled => ErrorClass::BadInput,
        ModelError::MissingParam(_) | ModelError::ParamShape { .. } | ModelError::Config(_) | ModelError::Tokenizer(_) => ErrorClass::Model,
    }
}

fn package_class(e: &PackageError) -> ErrorClass {
    match e {
        PackageError::Gpu(_) => ErrorClass::Gpu,
        _ => ErrorClass::Model,
    }
}

impl NativeError {
    pub fn class(&self) -> ErrorClass {
        match self {
            NativeError::NoInput
            | NativeError::NoSuchImage { .. }
            | NativeError::MixedInputs { .. }
            | NativeError::NotFound { .. }
            | NativeError::NoFrames { .. }
            | NativeError::Read { .. }
            | NativeError::Arguments(_)
            | NativeError::Video(_)
            | NativeError::Preprocess(_) => ErrorClass::BadInput,
            NativeError::NoTokenizer { .. } | NativeError::ReadTokenizer { .. } => ErrorClass::Model,
            NativeError::Package(e) => package_class(e),
            NativeError::Model(e) => model_class(e),
            NativeError::Gpu(_) => ErrorClass::Gpu,
            NativeError::Hub(HubError::BadId { .. }) => ErrorClass::BadInput,
            NativeError::Hub(HubError::Package(e)) => package_class(e),
            NativeError::Hub(_) => ErrorClass::Model,
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
        // Messages stay what they were.
        assert_eq!(NativeError::NotFound { path: "a.mp4".into() }.to_string(), "a.mp4: no such file or folder");
    }
}
