//! Errors of model code: a GPU failure, a parameter the package lacks, a config that disagrees
//! with the weights, or input the model cannot take. Each names what to do about it.

use crate::gpu::GpuError;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error("the model package has no tensor `{0}`: convert the checkpoint again with this version")]
    MissingParam(String),
    #[error("tensor `{name}` has shape {got:?}, the config implies {want:?}: the config does not match the weights")]
    ParamShape { name: String, want: Vec<usize>, got: Vec<usize> },
    #[error("config: {0}")]
    Config(String),
    #[error("input: {0}")]
    Input(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("cancelled")]
    Cancelled,
}

pub type MResult<T> = std::result::Result<T, ModelError>;
