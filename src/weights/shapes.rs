//! The tensors each model kind must have, with shapes derived from its config (spec Appendix A).
//! Used to check a checkpoint against its config.json (with VGGT, the config completed by the
//! structure its tensors show: `structure`) and to write random-weight packages.

use serde_json::Value;

use super::layout::ModelKind;

/// One expected tensor: canonical name, shape, and whether inference needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub name: String,
    pub shape: Vec<usize>,
    pub required: bool,
}

/// Read a number from the config (top level, then `text_config`), else the default.
fn num(cfg: &Value, key: &str, default: usize) -> usize {
    cfg.get(key).or_else(|| cfg.get("text_config").and_then(|t| t.get(key))).and_then(Value::as_u64).map(|v| v as usize).unwrap_or(default)
}

fn sub<'a>(cfg: &'a Value, key: &str) -> &'a Value {
    cfg.get(key).unwrap_or(&Value::Null)
}

/// VGGT hyper-parameters: `vggt_config` (this project's key: the converter writes it into every
/// package, see `weights::structure`), else the v1.1 `spatial_config`, else VGGT-1B's defaults.
/// The camera head works at `2 * dim` (frame and global features side by side); upstream builds
/// it with `CameraHead`'s defaults (trunk depth 4, 16 heads, MLP ratio 4), which the `camera_*`
/// keys can override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VggtDims {
    pub dim: usize,
    /// `depth`: frame/global block pairs of the aggregator.
    pub depth: usize,
    /// `dino_depth`: blocks of the DINO patch embedding (default `depth`, as in VGGT-1B, and what
    /// packages written before this key existed were built with).
    pub dino_depth: usize,
    pub heads: usize,
    /// `mlp_hidden`: MLP width of the frame and global blocks.
    pub mlp: usize,
    /// `dino_mlp_hidden`: MLP width of the DINO blocks (default `mlp`).
    pub dino_mlp: usize,
    pub patch: usize,
    pub img: usize,
    pub registers: usize,
    /// `camera_trunk_depth`: blocks of the camera head's trunk.
    pub camera_depth: usize,
    /// `camera_num_heads`: attention heads of the trunk blocks.
    pub camera_heads: usize,
    /// MLP width of the trunk blocks: `camera_mlp_hidden`, else `camera_mlp_ratio` times `2 * dim`.
    pub camera_mlp: usize,
    /// DPT heads: feature width (`dpt_features`, VGGT-1B: 256), the projections' widths
    /// (`dpt_out_channels`: 256, 512, 1024, 1024) and the aggregator layers they read
    /// (`dpt_layers`: 4, 11, 17, 23). Upstream hard-codes these; tiny test configs set them.
    pub dpt_features: usize,
    pub dpt_out_channels: [usize; 4],
    pub dpt_layers: [usize; 4],
}

/// Four numbers from the config, else the default.
fn four(cfg: &Value, key: &str, default: [usize; 4]) -> [usize; 4] {
    let Some(a) = cfg.get(key).and_then(Value::as_array) else { return default };
    let v: Vec<usize> = a.iter().filter_map(Value::as_u64).map(|v| v as usize).collect();
    v.try_into().unwrap_or(default)
}

/// The part of a config that holds VGGT's keys (see `VggtDims`).
pub fn vggt_section(kind: ModelKind, cfg: &Value) -> &Value {
    if cfg.get("vggt_config").is_some() {
        sub(cfg, "vggt_config")
    } else if kind == ModelKind::Vggt {
        cfg
    } else {
        sub(cfg, "spatial_config")
    }
}

impl VggtDims {
    pub fn from_config(kind: ModelKind, cfg: &Value) -> VggtDims {
        let v = vggt_section(kind, cfg);
        let dim = num(v, "embed_dim", 1024);
        let (depth, mlp) = (num(v, "depth", 24), num(v, "mlp_hidden", dim * 4));
        VggtDims {
            dim,
            depth,
            dino_depth: num(v, "dino_depth", depth),
            heads: num(v, "num_heads", 16),
            mlp,
            dino_mlp: num(v, "dino_mlp_hidden", mlp),
            patch: num(v, "patch_size", 14),
            img: num(v, "img_size", 518),
            registers: num(v, "num_register_tokens", 4),
            camera_depth: num(v, "camera_trunk_depth", 4),
            camera_heads: num(v, "camera_num_heads", 16),
            camera_mlp: num(v, "camera_mlp_hidden", num(v, "camera_mlp_ratio", 4) * 2 * dim),
            dpt_features: num(v, "dpt_features", 256),
            dpt_out_channels: four(v, "dpt_out_channels", [256, 512, 1024, 1024]),
            dpt_layers: four(v, "dpt_layers", [4, 11, 17, 23]),
        }
    }

    /// Every field under the key `from_config` reads it from, so that `from_config` of a
    /// `vggt_config` holding these gives back exactly `self`.
    pub fn to_config(&self) -> serde_json::Map<String, Value> {
        let v = serde_json::json!({
            "embed_dim": self.dim,
            "depth": self.depth,
            "dino_depth": self.dino_depth,
            "num_heads": self.heads,
            "mlp_hidden": self.mlp,
            "dino_mlp_hidden": self.dino_mlp,
            "patch_size": self.patch,
            "img_size": self.img,
            "num_register_tokens": self.registers,
            "camera_trunk_depth": self.camera_depth,
            "camera_num_heads": self.camera_heads,
            "camera_mlp_hidden": self.camera_mlp,
            "dpt_features": self.dpt_features,
            "dpt_out_channels": self.dpt_out_channels,
            "dpt_layers": self.dpt_layers,
        });
        match v {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object literal"),
        }
    }
}

/// The most blocks, layers or heads of any kind a config may name, and the widest dimension:
/// far above every real model, low enough that a hostile config.json (manifest, checkpoint) cannot
/// make `expected` list billions of tensors or overflow a shape's element count.
pub const MAX_COUNT: u64 = 1024;
pub const MAX_WIDTH: u64 = 1 << 20;

/// Refuses a config whose sizes cannot describe a model: a count or width out of range, a zero
/// divisor (heads, patch), widths that do not split into heads, or a tensor over
/// `source::MAX_TENSOR_ELEMENTS`. `expected` and the models' constructors rely on it.
pub fn check_config(kind: ModelKind, cfg: &Value) -> Result<(), String> {
    let range = |what: &str, v: usize, lo: u64, hi: u64| -> Result<(), String> {
        if (v as u64) < lo || v as u64 > hi {
            return Err(format!("`{what}` is {v}, outside {lo}..={hi}"));
        }
        Ok(())
    };
    if kind.has_llm() {
        let (h, nh, nkv) = (num(cfg, "hidden_size", 2048), num(cfg, "num_attention_heads", 16), num(cfg, "num_key_value_heads", 2));
        range("hidden_size", h, 1, MAX_WIDTH)?;
        range("intermediate_size", num(cfg, "intermediate_size", 11008), 1, MAX_WIDTH)?;
        range("vocab_size", num(cfg, "vocab_size", 151936), 1, MAX_WIDTH)?;
        range("num_hidden_layers", num(cfg, "num_hidden_layers", 36), 1, MAX_COUNT)?;
        range("num_attention_heads", nh, 1, MAX_COUNT)?;
        range("num_key_value_heads", nkv, 1, MAX_COUNT)?;
        if h % nh != 0 || nh % nkv != 0 {
            return Err(format!("hidden_size {h} must split into {nh} heads, and those into {nkv} key/value heads"));
        }
        let v = sub(cfg, "vision_config");
        for (k, d) in [("hidden_size", 1280), ("intermediate_size", 3420), ("out_hidden_size", h)] {
            range(&format!("vision_config.{k}"), num(v, k, d), 1, MAX_WIDTH)?;
        }
        for (k, d) in [("depth", 32), ("patch_size", 14), ("temporal_patch_size", 2), ("spatial_merge_size", 2), ("in_chans", 3), ("num_heads", 16)] {
            range(&format!("vision_config.{k}"), num(v, k, d), 1, MAX_COUNT)?;
        }
    }
    if kind.has_vggt() {
        VggtDims::from_config(kind, cfg).check()?;
    }
    if let Some(e) =
        expected(kind, cfg).iter().find(|e| e.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64)).is_none_or(|n| n > super::source::MAX_TENSOR_ELEMENTS))
    {
        return Err(format!("tensor {} would have shape {:?}, over {} elements", e.name, e.shape, super::source::MAX_TENSOR_ELEMENTS));
    }
    Ok(())
}

impl VggtDims {
    /// The sizes are in range and the divisions the model makes are exact (see `check_config`).
    pub fn check(&self) -> Result<(), String> {
        let counts = [
            ("depth", self.depth),
            ("dino_depth", self.dino_depth),
            ("num_heads", self.heads),
            ("patch_size", self.patch),
            ("num_register_tokens", self.registers),
            ("camera_trunk_depth", self.camera_depth),
            ("camera_num_heads", self.camera_heads),
        ];
        for (k, v) in counts {
            // Zero camera blocks are a checkpoint without the camera head; the rest divide or size a tensor.
            let lo = u64::from(k != "camera_trunk_depth");
            if (v as u64) < lo || v as u64 > MAX_COUNT {
                return Err(format!("VGGT's `{k}` is {v}, outside {lo}..={MAX_COUNT}"));
            }
        }
        let widths = [
            ("embed_dim", self.dim),
            ("mlp_hidden", self.mlp),
            ("dino_mlp_hidden", self.dino_mlp),
            ("img_size", self.img),
            ("camera_mlp_hidden", self.camera_mlp),
            ("dpt_features", self.dpt_features),
        ];
        for (k, v) in widths.into_iter().chain(self.dpt_out_channels.iter().map(|&c| ("dpt_out_channels", c))) {
            if v == 0 || v as u64 > MAX_WIDTH {
                return Err(format!("VGGT's `{k}` is {v}, outside 1..={MAX_WIDTH}"));
            }
        }
        if self.dim % self.heads != 0 || (2 * self.dim) % self.camera_heads != 0 || self.img < self.patch {
            return Err(format!(
                "VGGT's embed_dim {} must split into {} heads (and twice it into {} camera heads), and img_size {} hold a patch of {}",
                self.dim, self.heads, self.camera_heads, self.img, self.patch
            ));
        }
        Ok(())
    }
}

/// The tensors a checkpoint of `kind` with config `cfg` must have (VGGT's sizes: `VggtDims`).
pub fn expected(kind: ModelKind, cfg: &Value) -> Vec<Expected> {
    let mut out = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, required: bool| out.push(Expected { name, shape, required });
    let llm_hidden = num(cfg, "hidden_size", 2048);
    if kind.has_llm() {
        let (h, inter, layers) = (llm_hidden, num(cfg, "intermediate_size", 11008), num(cfg, "num_hidden_layers", 36));
        let (nh, nkv, vocab) = (num(cfg, "num_attention_heads", 16), num(cfg, "num_key_value_heads", 2), num(cfg, "vocab_size", 151936));
        let kv = nkv * (h / nh);
        add("llm.embed_tokens.weight".into(), vec![vocab, h], true);
        for l in 0..layers {
            let p = format!("llm.layers.{l}.");
            for (n, s) in [
                ("self_attn.q_proj.weight", vec![h, h]),
                ("self_attn.q_proj.bias", vec![h]),
                ("self_attn.k_proj.weight", vec![kv, h]),
                ("self_attn.k_proj.bias", vec![kv]),
                ("self_attn.v_proj.weight", vec![kv, h]),
                ("self_attn.v_proj.bias", vec![kv]),
                ("self_attn.o_proj.weight", vec![h, h]),
                ("mlp.gate_proj.weight", vec![inter, h]),
                ("mlp.up_proj.weight", vec![inter, h]),
                ("mlp.down_proj.weight", vec![h, inter]),
                ("input_layernorm.weight", vec![h]),
                ("post_attention_layernorm.weight", vec![h]),
            ] {
                add(format!("{p}{n}"), s, true);
            }
        }
        add("llm.norm.weight".into(), vec![h], true);
        let tied = cfg.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(true);
        if !tied {
            add("llm.lm_head.weight".into(), vec![vocab, h], true);
        }
        // The ViT.
        let v = sub(cfg, "vision_config");
        let (c, vi, depth) = (num(v, "hidden_size", 1280), num(v, "intermediate_size", 3420), num(v, "depth", 32));
        let (patch, tp, out_h) = (num(v, "patch_size", 14), num(v, "temporal_patch_size", 2), num(v, "out_hidden_size", llm_hidden));
        let m = num(v, "spatial_merge_size", 2);
        let cm = c * m * m;
        add("visual.patch_embed.proj.weight".into(), vec![c, num(v, "in_chans", 3), tp, patch, patch], true);
        for b in 0..depth {
            let p = format!("visual.blocks.{b}.");
            for (n, s) in [
                ("norm1.weight", vec![c]),
                ("norm2.weight", vec![c]),
                ("attn.qkv.weight", vec![3 * c, c]),
                ("attn.qkv.bias", vec![3 * c]),
                ("attn.proj.weight", vec![c, c]),
                ("attn.proj.bias", vec![c]),
                ("mlp.gate_proj.weight", vec![vi, c]),
                ("mlp.gate_proj.bias", vec![vi]),
                ("mlp.up_proj.weight", vec![vi, c]),
                ("mlp.up_proj.bias", vec![vi]),
                ("mlp.down_proj.weight", vec![c, vi]),
                ("mlp.down_proj.bias", vec![c]),
            ] {
                add(format!("{p}{n}"), s, true);
            }
        }
        add("visual.merger.ln_q.weight".into(), vec![c], true);
        add("visual.merger.mlp.0.weight".into(), vec![cm, cm], true);
        add("visual.merger.mlp.0.bias".into(), vec![cm], true);
        add("visual.merger.mlp.2.weight".into(), vec![out_h, cm], true);
        add("visual.merger.mlp.2.bias".into(), vec![out_h], true);
    }
    if kind.has_vggt() {
        let d = VggtDims::from_config(kind, cfg);
        vggt(&mut add, &d);
        let f = 8 * 2 * d.dim; // 2 frames x 2x2 patches x (frame ‖ global) channels
        let h = llm_hidden;
        match kind {
            ModelKind::SpatialMllmV11 => {
                add("connector.ln_q.weight".into(), vec![f], true);
                add("connector.mlp.0.weight".into(), vec![f, f], true);
                add("connector.mlp.0.bias".into(), vec![f], true);
                add("connector.mlp.2.weight".into(), vec![h, f], true);
                add("connector.mlp.2.bias".into(), vec![h], true);
            }
            ModelKind::SpatialMllmV10 => {
                add("connector.token_merge_ln_q.weight".into(), vec![f], true);
                add("connector.token_merge_mlp.0.weight".into(), vec![f, f], true);
                add("connector.token_merge_mlp.0.bias".into(), vec![f], true);
                add("connector.token_merge_mlp.2.weight".into(), vec![h, f], true);
                add("connector.token_merge_mlp.2.bias".into(), vec![h], true);
                add("connector.vgg_to_language_ln_q.weight".into(), vec![h], true);
                add("connector.vgg_to_language_mlp.0.weight".into(), vec![h, h], true);
                add("connector.vgg_to_language_mlp.0.bias".into(), vec![h], true);
                add("connector.vgg_to_language_mlp.2.weight".into(), vec![h, h], true);
                add("connector.vgg_to_language_mlp.2.bias".into(), vec![h], true);
            }
            _ => {}
        }
    }
    out
}

fn block(add: &mut impl FnMut(String, Vec<usize>, bool), p: &str, d: usize, mlp: usize, head_dim: Option<usize>, required: bool) {
    for n in ["norm1", "norm2"] {
        add(format!("{p}{n}.weight"), vec![d], required);
        add(format!("{p}{n}.bias"), vec![d], required);
    }
    add(format!("{p}attn.qkv.weight"), vec![3 * d, d], required);
    add(format!("{p}attn.qkv.bias"), vec![3 * d], required);
    add(format!("{p}attn.proj.weight"), vec![d, d], required);
    add(format!("{p}attn.proj.bias"), vec![d], required);
    if let Some(hd) = head_dim {
        for n in ["q_norm", "k_norm"] {
            add(format!("{p}attn.{n}.weight"), vec![hd], required);
            add(format!("{p}attn.{n}.bias"), vec![hd], required);
        }
    }
    add(format!("{p}ls1.gamma"), vec![d], required);
    add(format!("{p}ls2.gamma"), vec![d], required);
    add(format!("{p}mlp.fc1.weight"), vec![mlp, d], required);
    add(format!("{p}mlp.fc1.bias"), vec![mlp], required);
    add(format!("{p}mlp.fc2.weight"), vec![d, mlp], required);
    add(format!("{p}mlp.fc2.bias"), vec![d], required);
}

/// The aggregator (needed) and the camera, depth and point heads (optional: frame sampling only).
fn vggt(add: &mut impl FnMut(String, Vec<usize>, bool), v: &VggtDims) {
    let a = "vggt.aggregator.";
    let d = v.dim;
    let grid = v.img / v.patch;
    add(format!("{a}camera_token"), vec![1, 2, 1, d], true);
    add(format!("{a}register_token"), vec![1, 2, v.registers, d], true);
    add(format!("{a}patch_embed.cls_token"), vec![1, 1, d], true);
    add(format!("{a}patch_embed.pos_embed"), vec![1, 1 + grid * grid, d], true);
    add(format!("{a}patch_embed.register_tokens"), vec![1, v.registers, d], true);
    add(format!("{a}patch_embed.patch_embed.proj.weight"), vec![d, 3, v.patch, v.patch], true);
    add(format!("{a}patch_embed.patch_embed.proj.bias"), vec![d], true);
    for b in 0..v.dino_depth {
        block(add, &format!("{a}patch_embed.blocks.{b}."), d, v.dino_mlp, None, true);
    }
    add(format!("{a}patch_embed.norm.weight"), vec![d], true);
    add(format!("{a}patch_embed.norm.bias"), vec![d], true);
    for x in ["frame_blocks", "global_blocks"] {
        for b in 0..v.depth {
            block(add, &format!("{a}{x}.{b}."), d, v.mlp, Some(d / v.heads), true);
        }
    }
    // Camera head at 2 * dim.
    let c = "vggt.camera_head.";
    let d2 = 2 * d;
    for b in 0..v.camera_depth {
        block(add, &format!("{c}trunk.{b}."), d2, v.camera_mlp, None, false);
    }
    for n in ["token_norm", "trunk_norm"] {
        add(format!("{c}{n}.weight"), vec![d2], false);
        add(format!("{c}{n}.bias"), vec![d2], false);
    }
    add(format!("{c}empty_pose_tokens"), vec![1, 1, 9], false);
    add(format!("{c}embed_pose.weight"), vec![d2, 9], false);
    add(format!("{c}embed_pose.bias"), vec![d2], false);
    add(format!("{c}poseLN_modulation.1.weight"), vec![3 * d2, d2], false);
    add(format!("{c}poseLN_modulation.1.bias"), vec![3 * d2], false);
    add(format!("{c}pose_branch.fc1.weight"), vec![d2 / 2, d2], false);
    add(format!("{c}pose_branch.fc1.bias"), vec![d2 / 2], false);
    add(format!("{c}pose_branch.fc2.weight"), vec![9, d2 / 2], false);
    add(format!("{c}pose_branch.fc2.bias"), vec![9], false);
    // DPT heads.
    let oc = v.dpt_out_channels;
    let f = v.dpt_features;
    for (head, out) in [("depth_head", 2), ("point_head", 4)] {
        let h = format!("vggt.{head}.");
        add(format!("{h}norm.weight"), vec![d2], false);
        add(format!("{h}norm.bias"), vec![d2], false);
        for (i, o) in oc.iter().enumerate() {
            add(format!("{h}projects.{i}.weight"), vec![*o, d2, 1, 1], false);
            add(format!("{h}projects.{i}.bias"), vec![*o], false);
        }
        for (i, k) in [(0, 4), (1, 2)] {
            add(format!("{h}resize_layers.{i}.weight"), vec![oc[i], oc[i], k, k], false);
            add(format!("{h}resize_layers.{i}.bias"), vec![oc[i]], false);
        }
        add(format!("{h}resize_layers.3.weight"), vec![oc[3], oc[3], 3, 3], false);
        add(format!("{h}resize_layers.3.bias"), vec![oc[3]], false);
        for (i, o) in oc.iter().enumerate() {
            add(format!("{h}scratch.layer{}_rn.weight", i + 1), vec![f, *o, 3, 3], false);
        }
        for r in 1..=4 {
            add(format!("{h}scratch.refinenet{r}.out_conv.weight"), vec![f, f, 1, 1], false);
            add(format!("{h}scratch.refinenet{r}.out_conv.bias"), vec![f], false);
            let units: &[usize] = if r == 4 { &[2] } else { &[1, 2] };
            for u in units {
                for cv in [1, 2] {
                    add(format!("{h}scratch.refinenet{r}.resConfUnit{u}.conv{cv}.weight"), vec![f, f, 3, 3], false);
                    add(format!("{h}scratch.refinenet{r}.resConfUnit{u}.conv{cv}.bias"), vec![f], false);
                }
            }
        }
        add(format!("{h}scratch.output_conv1.weight"), vec![f / 2, f, 3, 3], false);
        add(format!("{h}scratch.output_conv1.bias"), vec![f / 2], false);
        add(format!("{h}scratch.output_conv2.0.weight"), vec![32, f / 2, 3, 3], false);
        add(format!("{h}scratch.output_conv2.0.bias"), vec![32], false);
        add(format!("{h}scratch.output_conv2.2.weight"), vec![out, 32, 1, 1], false);
        add(format!("{h}scratch.output_conv2.2.bias"), vec![out], false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// The real configs reproduce the spec's parameter counts (section 5.4).
    #[test]
    fn parameter_counts_match_the_spec() {
        let cfg = serde_json::json!({});
        let count = |kind, pfx: &str| -> usize { expected(kind, &cfg).iter().filter(|e| e.name.starts_with(pfx)).map(|e| e.shape.iter().product::<usize>()).sum() };
        assert_eq!(count(ModelKind::QwenVl, "llm."), 3_085_938_688);
        assert_eq!(count(ModelKind::QwenVl, "visual."), 668_684_288);
        // Aggregator without the unused mask token: 909 112 320 - 1024.
        assert_eq!(count(ModelKind::Vggt, "vggt.aggregator."), 909_112_320 - 1024);
        assert_eq!(count(ModelKind::Vggt, "vggt.camera_head."), 216_174_610);
        assert_eq!(count(ModelKind::Vggt, "vggt.depth_head."), 32_654_562);
        assert_eq!(count(ModelKind::Vggt, "vggt.point_head."), 32_654_628);
        assert_eq!(count(ModelKind::SpatialMllmV11, "connector."), 302_024_704);
        assert_eq!(count(ModelKind::SpatialMllmV10, "connector."), 310_419_456);
    }
}
