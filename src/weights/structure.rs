//! A checkpoint's VGGT structure read from its tensors. Upstream VGGT checkpoints come without a
//! usable config.json, Spatial-MLLM's configs hard-code VGGT-1B, and the DINO patch embedding
//! need not have as many blocks as the aggregator, so the converter takes every size the tensors
//! show from them and only the rest from the config (`VggtDims::from_config`: `vggt_config`, else
//! `spatial_config` or a VGGT config's top level, else VGGT-1B's defaults). It writes the result
//! into the package's config as a complete `vggt_config`, which the loaders read as it is.
//!
//! Where each field comes from (canonical names, `vggt.` prefix left out):
//!
//! | field | source |
//! |---|---|
//! | `dim` | `aggregator.camera_token` [1, 2, 1, dim] (else `patch_embed.norm.weight`) |
//! | `depth` | 1 + the highest N of `aggregator.frame_blocks.N` / `global_blocks.N` |
//! | `dino_depth` | 1 + the highest N of `aggregator.patch_embed.blocks.N` |
//! | `heads` | dim / the width of `frame_blocks.0.attn.q_norm.weight` (the per-head q norm) |
//! | `mlp`, `dino_mlp` | rows of `frame_blocks.0.mlp.fc1.weight`, `patch_embed.blocks.0.mlp.fc1.weight` |
//! | `patch` | `patch_embed.patch_embed.proj.weight` [dim, 3, patch, patch] |
//! | `img` | `patch_embed.pos_embed` [1, 1 + M², dim]: M · patch (the config's value when it gives M) |
//! | `registers` | `aggregator.register_token` [1, 2, registers, dim] |
//! | `camera_depth` | 1 + the highest N of `camera_head.trunk.N` (when the checkpoint has a camera head) |
//! | `camera_mlp` | rows of `camera_head.trunk.0.mlp.fc1.weight` |
//! | `dpt_features`, `dpt_out_channels` | rows of `{depth,point}_head.scratch.layer1_rn.weight`, `projects.i.weight` |
//! | `camera_heads` | config only (`camera_num_heads`, else 16): the trunk has no per-head tensor |
//! | `dpt_layers` | config only (else VGGT-1B's 4, 11, 17, 23): no shape names them |
//!
//! A size the tensors do not show keeps the config's value; then `shapes::expected` checks every
//! tensor against the result, so a checkpoint whose tensors contradict each other (or lack one)
//! fails there with `ShapeMismatch` or `MissingTensor`.

use std::collections::HashMap;

use serde_json::Value;

use super::error::{PResult, PackageError};
use super::layout::ModelKind;
use super::shapes::VggtDims;

/// Canonical tensor name → shape.
pub type Shapes<'a> = HashMap<&'a str, &'a [usize]>;

const AGG: &str = "vggt.aggregator.";
const CAMERA: &str = "vggt.camera_head.";
const DPT_HEADS: [&str; 2] = ["vggt.depth_head.", "vggt.point_head."];

/// Axis `i` of a tensor's shape (from the end when `i` is negative), when present and non-zero.
fn axis(shapes: &Shapes, name: &str, i: isize) -> Option<usize> {
    let s = shapes.get(name)?;
    let i = if i < 0 { s.len().checked_sub(i.unsigned_abs())? } else { i as usize };
    s.get(i).copied().filter(|&n| n > 0)
}

/// 1 + the highest N of the names `{prefix}N.…`; None when there is none.
fn block_count(shapes: &Shapes, prefix: &str) -> Option<usize> {
    shapes.keys().filter_map(|n| n.strip_prefix(prefix)?.split('.').next()?.parse::<usize>().ok()).max().map(|m| m + 1)
}

fn has_prefix(shapes: &Shapes, prefix: &str) -> bool {
    shapes.keys().any(|n| n.starts_with(prefix))
}

/// VGGT's sizes: what the tensors show, the config's (or the defaults') for the rest.
pub fn vggt_dims(kind: ModelKind, shapes: &Shapes, cfg: &Value) -> VggtDims {
    let mut d = VggtDims::from_config(kind, cfg);
    let a = |s: &str| format!("{AGG}{s}");
    d.dim = axis(shapes, &a("camera_token"), -1).or_else(|| axis(shapes, &a("patch_embed.norm.weight"), 0)).unwrap_or(d.dim);
    let pairs = block_count(shapes, &a("frame_blocks.")).max(block_count(shapes, &a("global_blocks.")));
    d.depth = pairs.unwrap_or(d.depth);
    d.dino_depth = block_count(shapes, &a("patch_embed.blocks.")).unwrap_or(d.dino_depth);
    d.heads = axis(shapes, &a("frame_blocks.0.attn.q_norm.weight"), 0).map_or(d.heads, |hd| (d.dim / hd).max(1));
    d.mlp = axis(shapes, &a("frame_blocks.0.mlp.fc1.weight"), 0).unwrap_or(d.mlp);
    d.dino_mlp = axis(shapes, &a("patch_embed.blocks.0.mlp.fc1.weight"), 0).unwrap_or(d.dino_mlp);
    d.patch = axis(shapes, &a("patch_embed.patch_embed.proj.weight"), 2).unwrap_or(d.patch);
    if let Some(m) = axis(shapes, &a("patch_embed.pos_embed"), 1).and_then(|n| square_root(n - 1)) {
        if d.img.checked_div(d.patch) != Some(m) {
            d.img = m * d.patch;
        }
    }
    d.registers = axis(shapes, &a("register_token"), 2).unwrap_or(d.registers);
    if has_prefix(shapes, CAMERA) {
        d.camera_depth = block_count(shapes, &format!("{CAMERA}trunk.")).unwrap_or(0);
        d.camera_mlp = axis(shapes, &format!("{CAMERA}trunk.0.mlp.fc1.weight"), 0).unwrap_or(d.camera_mlp);
    }
    for h in DPT_HEADS.iter().rev() {
        d.dpt_features = axis(shapes, &format!("{h}scratch.layer1_rn.weight"), 0).unwrap_or(d.dpt_features);
        for (i, c) in d.dpt_out_channels.iter_mut().enumerate() {
            *c = axis(shapes, &format!("{h}projects.{i}.weight"), 0).unwrap_or(*c);
        }
    }
    d
}

/// `n`'s integer square root when `n` is a perfect square (the positional table's grid side).
fn square_root(n: usize) -> Option<usize> {
    let r = (n as f64).sqrt().round() as usize;
    (r * r == n && r > 0).then_some(r)
}

/// What no tensor contradicts but the model cannot run: DPT heads reading aggregator layers the
/// checkpoint does not have (their layers come from the config, whose default fits VGGT-1B only).
pub fn check(dims: &VggtDims, shapes: &Shapes, label: &str) -> PResult<()> {
    let heads = DPT_HEADS.iter().any(|h| has_prefix(shapes, h));
    if let Some(l) = dims.dpt_layers.iter().find(|&&l| l >= dims.depth).filter(|_| heads) {
        return Err(PackageError::Structure {
            file: label.into(),
            msg: format!(
                "the DPT heads read aggregator layers {:?} (`dpt_layers`: the config's, else VGGT-1B's) but the aggregator has {} layers, so layer {l} does not exist. Set `dpt_layers` (4 layer indices) in config.json",
                dims.dpt_layers, dims.depth
            ),
        });
    }
    Ok(())
}

/// `cfg` with `vggt_config` holding every field of `dims`: the checkpoint's own keys are kept
/// (overwritten where the tensors say otherwise), the rest added.
pub fn with_vggt_config(cfg: Value, dims: &VggtDims) -> Value {
    let mut top = match cfg {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let mut section = match top.remove("vggt_config") {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    section.extend(dims.to_config());
    top.insert("vggt_config".into(), Value::Object(section));
    Value::Object(top)
}

/// The config a VGGT-bearing checkpoint is converted with: its own, completed by its tensors.
pub fn complete_config(kind: ModelKind, shapes: &Shapes, cfg: Value, label: &str) -> PResult<Value> {
    let dims = vggt_dims(kind, shapes, &cfg);
    check(&dims, shapes, label)?;
    Ok(with_vggt_config(cfg, &dims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::shapes::expected;

    /// The shapes `expected` lists for `dims` (what a consistent checkpoint holds).
    fn checkpoint(kind: ModelKind, dims: &VggtDims) -> Vec<(String, Vec<usize>)> {
        let cfg = with_vggt_config(serde_json::json!({}), dims);
        expected(kind, &cfg).into_iter().map(|e| (e.name, e.shape)).collect()
    }

    fn shapes(list: &[(String, Vec<usize>)]) -> Shapes<'_> {
        list.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect()
    }

    fn tiny() -> VggtDims {
        let cfg = serde_json::json!({"embed_dim": 32, "depth": 4, "dino_depth": 3, "num_heads": 2, "mlp_hidden": 96,
            "dino_mlp_hidden": 64, "img_size": 28, "num_register_tokens": 2, "camera_trunk_depth": 1, "camera_mlp_hidden": 48,
            "dpt_features": 8, "dpt_out_channels": [8, 16, 32, 32], "dpt_layers": [0, 1, 2, 3]});
        VggtDims::from_config(ModelKind::Vggt, &cfg)
    }

    #[test]
    fn config_round_trips() {
        let d = tiny();
        assert_eq!((d.depth, d.dino_depth, d.mlp, d.dino_mlp, d.camera_mlp), (4, 3, 96, 64, 48));
        for kind in [ModelKind::Vggt, ModelKind::SpatialMllmV11] {
            assert_eq!(VggtDims::from_config(kind, &with_vggt_config(serde_json::json!({}), &d)), d);
        }
        let old = VggtDims::from_config(ModelKind::Vggt, &serde_json::json!({"depth": 5}));
        assert_eq!(old.dino_depth, 5, "configs without dino_depth keep the old assumption");
    }

    /// Every derivable size comes from the tensors, whatever the config says; the rest from it.
    #[test]
    fn sizes_come_from_the_tensors() {
        let d = tiny();
        let list = checkpoint(ModelKind::Vggt, &d);
        let cfg = serde_json::json!({"depth": 24, "embed_dim": 1024, "camera_num_heads": 4, "dpt_layers": [0, 1, 2, 3]});
        let got = vggt_dims(ModelKind::Vggt, &shapes(&list), &cfg);
        assert_eq!(got, VggtDims { camera_heads: 4, ..d.clone() });
        // Without a camera head or DPT heads their sizes stay the config's.
        let bare: Vec<_> = list.iter().filter(|(n, _)| n.starts_with(AGG)).cloned().collect();
        let got = vggt_dims(ModelKind::Vggt, &shapes(&bare), &serde_json::json!({}));
        assert_eq!((got.dim, got.depth, got.dino_depth, got.camera_depth, got.dpt_features), (32, 4, 3, 4, 256));
    }

    #[test]
    fn dpt_layers_beyond_the_aggregator_are_reported() {
        let d = VggtDims { dpt_layers: [4, 11, 17, 23], ..tiny() };
        let list = checkpoint(ModelKind::Vggt, &d);
        let err = complete_config(ModelKind::Vggt, &shapes(&list), serde_json::json!({}), "ckpt").unwrap_err();
        assert!(matches!(err, PackageError::Structure { .. }) && err.to_string().contains("dpt_layers"), "{err}");
        let no_heads: Vec<_> = list.into_iter().filter(|(n, _)| !n.contains("_head.") || n.contains("camera")).collect();
        complete_config(ModelKind::Vggt, &shapes(&no_heads), serde_json::json!({}), "ckpt").unwrap();
    }

    #[test]
    fn the_checkpoints_own_keys_are_kept() {
        let cfg = serde_json::json!({"hidden_size": 64, "vggt_config": {"depth": 9, "note": "x"}});
        let out = with_vggt_config(cfg, &tiny());
        assert_eq!(out["hidden_size"], 64);
        assert_eq!(out["vggt_config"]["note"], "x");
        assert_eq!(out["vggt_config"]["depth"], 4, "the tensors win");
        assert_eq!(out["vggt_config"]["dino_depth"], 3);
    }
}
