//! A loaded package's tensors by canonical name, with typed, checked access, and hierarchical
//! views of them (`params.pp("llm.layers").pp(l)`, as candle's `VarBuilder::pp`): a `Scope` only
//! composes the package's own names, so a missing or misshapen tensor is reported by its full name.

use std::collections::HashMap;
use std::fmt::Display;

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

    /// The whole package as a scope (no prefix).
    pub fn root(&self) -> Scope<'_> {
        Scope { params: self, prefix: String::new() }
    }

    /// The tensors under `name.` (`params.pp("llm.layers").pp(3)` reads `llm.layers.3.*`).
    pub fn pp(&self, name: impl Display) -> Scope<'_> {
        self.root().pp(name)
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

/// The parameters under a dotted prefix. Names compose with `.`; a trailing `.` in a prefix given
/// to `pp` is accepted (`pp("vggt.depth_head.")` is `pp("vggt.depth_head")`).
#[derive(Clone)]
pub struct Scope<'a> {
    params: &'a Params,
    prefix: String,
}

impl<'a> Scope<'a> {
    /// The scope one level down: `name` (a module name, a dotted path or an index) under this one.
    pub fn pp(&self, name: impl Display) -> Scope<'a> {
        let name = name.to_string();
        let name = name.trim_end_matches('.');
        let prefix = if name.is_empty() { self.prefix.clone() } else { self.path(name) };
        Scope { params: self.params, prefix }
    }

    /// This scope's prefix, without a trailing `.` (empty at the root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full name of `name` in this scope.
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.params.has(&self.path(name))
    }

    pub fn matrix_parts(&self, name: &str, rows: usize, cols: usize) -> MResult<Vec<Weight>> {
        self.params.matrix_parts(&self.path(name), rows, cols)
    }

    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> MResult<Weight> {
        self.params.matrix(&self.path(name), rows, cols)
    }

    pub fn vector(&self, name: &str, len: usize) -> MResult<Tensor> {
        self.params.vector(&self.path(name), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_compose_the_package_names() {
        let p = Params::new(HashMap::new());
        assert_eq!(p.pp("llm.layers").pp(3).pp("self_attn").path("q_proj.weight"), "llm.layers.3.self_attn.q_proj.weight");
        assert_eq!(p.pp("vggt.depth_head.").pp("scratch").prefix(), "vggt.depth_head.scratch");
        assert_eq!(p.pp("connector").pp("").path("ln_q.weight"), "connector.ln_q.weight");
        assert_eq!(p.root().path("llm.norm.weight"), "llm.norm.weight");
    }

    #[test]
    fn a_missing_tensor_is_named_in_full() {
        let p = Params::new(HashMap::new());
        let Err(e) = p.pp("llm.layers").pp(7).pp("mlp").vector("gate_proj.bias", 4) else { panic!("an empty package has no tensors") };
        assert!(matches!(&e, ModelError::MissingParam(n) if n == "llm.layers.7.mlp.gate_proj.bias"), "{e}");
        assert!(e.to_string().contains("`llm.layers.7.mlp.gate_proj.bias`"), "{e}");
        assert!(!p.pp("visual").has("merger.ln_q.weight"));
    }
}
