//! Which tensor is stored in which format: a per-model default, overridable by rules.
//! Default: q4 for the language model's and the connector's matrices, q8 for the vision
//! encoders' matrices and the token embedding, f16 for convolutions, norms, biases, tokens and
//! anything small. Rules `PREFIX=FORMAT` (the longest matching prefix wins) override it.

use super::error::{PResult, PackageError};
use super::quant::WeightFormat;

#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Vec<(String, WeightFormat)>,
}

impl Policy {
    /// Parse "llm.=q8,visual.blocks.0.=f16".
    pub fn parse(spec: &str) -> PResult<Policy> {
        let mut rules = Vec::new();
        for r in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (p, f) = r.split_once('=').ok_or_else(|| PackageError::Policy(r.into()))?;
            let f = WeightFormat::parse(f.trim()).ok_or_else(|| PackageError::Policy(r.into()))?;
            rules.push((p.trim().to_string(), f));
        }
        Ok(Policy { rules })
    }

    pub fn format(&self, name: &str, shape: &[usize]) -> WeightFormat {
        if let Some((_, f)) = self.rules.iter().filter(|(p, _)| name.starts_with(p.as_str())).max_by_key(|(p, _)| p.len()) {
            return *f;
        }
        default_format(name, shape)
    }
}

fn default_format(name: &str, shape: &[usize]) -> WeightFormat {
    let matrix = shape.len() == 2 && shape[0] >= 32 && shape[1] >= 32;
    if !matrix {
        return WeightFormat::F16;
    }
    if name == "llm.embed_tokens.weight" {
        WeightFormat::Q8
    } else if name.starts_with("llm.") || name.starts_with("connector.") {
        WeightFormat::Q4
    } else {
        WeightFormat::Q8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn defaults_and_overrides() {
        let p = Policy::default();
        assert_eq!(p.format("llm.layers.3.mlp.up_proj.weight", &[11008, 2048]), WeightFormat::Q4);
        assert_eq!(p.format("llm.embed_tokens.weight", &[151936, 2048]), WeightFormat::Q8);
        assert_eq!(p.format("visual.blocks.0.attn.qkv.weight", &[3840, 1280]), WeightFormat::Q8);
        assert_eq!(p.format("visual.blocks.0.attn.qkv.bias", &[3840]), WeightFormat::F16);
        assert_eq!(p.format("vggt.aggregator.patch_embed.patch_embed.proj.weight", &[1024, 3, 14, 14]), WeightFormat::F16);
        let o = Policy::parse("llm.=q8, llm.layers.0.=f16").unwrap();
        assert_eq!(o.format("llm.layers.0.mlp.up_proj.weight", &[64, 64]), WeightFormat::F16);
        assert_eq!(o.format("llm.layers.1.mlp.up_proj.weight", &[64, 64]), WeightFormat::Q8);
        assert!(Policy::parse("llm.=q3").is_err());
    }
}
