//! Checkpoint key layouts. Every supported upstream naming maps onto one canonical naming:
//! `llm.*` (Qwen2.5 decoder, `llm.embed_tokens.weight`, `llm.layers.N.*`, `llm.norm.weight`),
//! `visual.*` (Qwen2.5-VL ViT), `vggt.*` (VGGT: `vggt.aggregator.*`, heads) and `connector.*`
//! (v1.1 MLPAddConnector, or v1.0 VGGTEmbeddingMerger with its own sub-names).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// Diankun/Spatial-MLLM-subset-sft (paper-era code).
    SpatialMllmV10,
    /// Diankun/Spatial-MLLM-v1.1-Instruct-135K / -820K.
    SpatialMllmV11,
    QwenVl,
    Vggt,
}

impl ModelKind {
    pub fn id(self) -> &'static str {
        match self {
            ModelKind::SpatialMllmV10 => "spatial-mllm-v1.0",
            ModelKind::SpatialMllmV11 => "spatial-mllm-v1.1",
            ModelKind::QwenVl => "qwen2.5-vl",
            ModelKind::Vggt => "vggt",
        }
    }
    pub fn from_id(id: &str) -> Option<ModelKind> {
        [ModelKind::SpatialMllmV10, ModelKind::SpatialMllmV11, ModelKind::QwenVl, ModelKind::Vggt].into_iter().find(|k| k.id() == id)
    }
    pub fn has_llm(self) -> bool {
        self != ModelKind::Vggt
    }
    pub fn has_vggt(self) -> bool {
        self != ModelKind::QwenVl
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Guess the kind from the key set; `None` when no known layout matches.
pub fn detect<'a>(keys: impl IntoIterator<Item = &'a str> + Clone) -> Option<ModelKind> {
    let any = |p: &str| keys.clone().into_iter().any(|k| k.starts_with(p));
    if any("spatial_encoder.vggt_model.") || any("connector.") {
        Some(ModelKind::SpatialMllmV11)
    } else if any("vggt.") || any("vggt_embedding_merger.") {
        Some(ModelKind::SpatialMllmV10)
    } else if any("visual.") || any("model.visual.") || (any("model.layers.") && any("model.embed_tokens.")) {
        Some(ModelKind::QwenVl)
    } else if any("aggregator.") {
        Some(ModelKind::Vggt)
    } else {
        None
    }
}

/// The canonical name of an upstream key, or `None` for tensors inference never uses
/// (VGGT's track head and DINO's mask token).
pub fn canonical(kind: ModelKind, key: &str) -> Option<String> {
    let map = |prefix: &str, to: &str| key.strip_prefix(prefix).map(|rest| format!("{to}{rest}"));
    let name = match kind {
        ModelKind::Vggt => Some(format!("vggt.{key}")),
        _ => map("model.language_model.", "llm.")
            .or_else(|| map("model.visual.", "visual."))
            .or_else(|| map("visual.", "visual."))
            .or_else(|| map("spatial_encoder.vggt_model.", "vggt."))
            .or_else(|| map("vggt_embedding_merger.", "connector."))
            .or_else(|| map("connector.", "connector."))
            .or_else(|| map("vggt.", "vggt."))
            .or_else(|| map("lm_head.", "llm.lm_head."))
            .or_else(|| map("model.", "llm.")),
    }?;
    if name.starts_with("vggt.track_head.") || name.ends_with("patch_embed.mask_token") {
        return None;
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn layouts_map_to_one_naming() {
        let v11 = ["spatial_encoder.vggt_model.aggregator.camera_token", "connector.ln_q.weight", "model.layers.0.mlp.up_proj.weight"];
        assert_eq!(detect(v11.iter().copied()), Some(ModelKind::SpatialMllmV11));
        assert_eq!(canonical(ModelKind::SpatialMllmV11, v11[0]).unwrap(), "vggt.aggregator.camera_token");
        assert_eq!(canonical(ModelKind::SpatialMllmV11, v11[2]).unwrap(), "llm.layers.0.mlp.up_proj.weight");
        let v10 = ["vggt.aggregator.camera_token", "vggt_embedding_merger.token_merge_ln_q.weight", "visual.merger.ln_q.weight"];
        assert_eq!(detect(v10.iter().copied()), Some(ModelKind::SpatialMllmV10));
        assert_eq!(canonical(ModelKind::SpatialMllmV10, v10[1]).unwrap(), "connector.token_merge_ln_q.weight");
        let new = ["model.language_model.norm.weight", "model.visual.blocks.0.norm1.weight", "lm_head.weight"];
        assert_eq!(detect(new.iter().copied()), Some(ModelKind::QwenVl));
        assert_eq!(canonical(ModelKind::QwenVl, new[0]).unwrap(), "llm.norm.weight");
        assert_eq!(canonical(ModelKind::QwenVl, new[1]).unwrap(), "visual.blocks.0.norm1.weight");
        assert_eq!(canonical(ModelKind::QwenVl, new[2]).unwrap(), "llm.lm_head.weight");
        assert_eq!(detect(["aggregator.frame_blocks.0.ls1.gamma"].into_iter()), Some(ModelKind::Vggt));
        assert_eq!(canonical(ModelKind::Vggt, "track_head.x.weight"), None);
        assert_eq!(canonical(ModelKind::SpatialMllmV10, "vggt.aggregator.patch_embed.mask_token"), None);
        assert_eq!(detect(["encoder.layer.0.weight"].into_iter()), None);
    }
}
