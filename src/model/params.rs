//! A loaded package's tensors by canonical name, with typed, checked access.

use std::collections::HashMap;

use super::{MResult, ModelError};
use crate::gpu::Tensor;
use crate::weights::loader::GpuParam;
use crate::weights::Weight;

pub struct Params {
    map: HashMap<String, GpuParam>,
}

impl Params {
    pub fn new(map: HashMap<String, GpuParam>) -> Params {
        Params { map }
    }

    /// Whether the package holds `name` (optional parts such as VGGT's heads).
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A matrix in its row parts, checked against the expected [rows, cols].
    pub fn matrix_parts(&self, name: &str, rows: usize, cols: usize) -> MResult<Vec<Weight>> {
        match self.map.get(name) {
            Some(GpuParam::Matrix(parts)) => {
                let got_rows: usize = parts.iter().map(|w| w.rows).sum();
                if got_rows != rows || parts.iter().any(|w| w.cols != cols) {
                    return Err(ModelError::ParamShape { name: name.into(), want: vec![rows, cols], got: vec![got_rows, parts[0].cols] });
                }
                Ok(parts.clone())
            }
            Some(GpuParam::Vector(t)) => Err(ModelError::ParamShape { name: name.into(), want: vec![rows, cols], got: t.shape.clone() }),
            None => Err(ModelError::MissingParam(name.into())),
        }
    }

    /// A matrix stored in one part (every matrix but the largest tables fits one binding).
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> MResult<Weight> {
        let mut parts = self.matrix_parts(name, rows, cols)?;
        if parts.len() != 1 {
            return Err(ModelError::Config(format!("`{name}` is split into {} parts; convert with a larger --shard-kib so that it fits one shard", parts.len())));
        }
        Ok(parts.remove(0))
    }

    /// A 1-D f32 tensor of `len` values.
    pub fn vector(&self, name: &str, len: usize) -> MResult<Tensor> {
        match self.map.get(name) {
            Some(GpuParam::Vector(t)) if t.numel() == len => Ok(t.clone()),
            Some(GpuParam::Vector(t)) => Err(ModelError::ParamShape { name: name.into(), want: vec![len], got: t.shape.clone() }),
            Some(GpuParam::Matrix(p)) => Err(ModelError::ParamShape { name: name.into(), want: vec![len], got: vec![p[0].rows, p[0].cols] }),
            None => Err(ModelError::MissingParam(name.into())),
        }
    }
}
