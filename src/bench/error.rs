//! Errors of the benchmarks: each names the row or stage that failed and why, so the message says what to look
//! at (the GPU's error, or the model's).

use crate::gpu::GpuError;
use crate::model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The bandwidth probe (the copy floor's rows) failed on the GPU.
    #[error("bandwidth probe: {0}")]
    Probe(#[source] GpuError),
    /// A kernel case's row could not be set up (its inputs or weights).
    #[error("{row}: {reason}")]
    RowSetup { row: String, reason: String },
    /// A kernel case's row failed while timed on the GPU.
    #[error("{row}: {source}")]
    Row { row: String, source: GpuError },
    /// A GPU step outside a named row (a GEMM floor, a copy floor, a submission).
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The model: its config, its parameters, or a forward pass.
    #[error(transparent)]
    Model(#[from] ModelError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_row() {
        let e = BenchError::Row { row: "matmul Gemm 64".into(), source: GpuError::OutOfMemory("x".into()) };
        assert!(e.to_string().starts_with("matmul Gemm 64: "), "{e}");
        let e = BenchError::RowSetup { row: "softmax 8".into(), reason: "bad".into() };
        assert_eq!(e.to_string(), "softmax 8: bad");
        assert!(BenchError::Probe(GpuError::OutOfMemory("x".into())).to_string().starts_with("bandwidth probe: "));
    }
}
