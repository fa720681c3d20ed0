//! The Qwen2.5-VL vision encoder (spec 6.1): patch embedding (a linear map of 14x14x2 patches),
//! blocks of x += proj(Attn(RMSNorm(x))) with 2D RoPE and window attention (full attention
//! within each temporal group in the `fullatt` blocks), x += down(SiLU(gate(h)) * up(h)); then the
//! patch merger RMSNorm → 2x2 concat → Linear → GELU → Linear, back in the processor's order.

use super::vision_layout::{Grid, VisionLayout};
use super::VisionConfig;
use crate::gpu::{Recorder, Tensor};
use crate::kernels::attention::{attention, Attention, HeadsView};
use crate::kernels::gather::gather_rows;
use crate::kernels::matmul::{linear, Activation, Epilogue};
use crate::kernels::norm::rms_norm;
use crate::kernels::rope::{rope_inplace, RopeKind, RopeTable};
use crate::model::{MResult, ModelError, Params};
use crate::weights::Weight;

const EPS: f32 = 1e-6;

struct Block {
    norm1: Tensor,
    qkv: Weight,
    qkv_bias: Tensor,
    proj: Weight,
    proj_bias: Tensor,
    norm2: Tensor,
    gate: Weight,
    gate_bias: Tensor,
    up: Weight,
    up_bias: Tensor,
    down: Weight,
    down_bias: Tensor,
}

pub struct VisionModel {
    pub cfg: VisionConfig,
    patch_embed: Weight,
    blocks: Vec<Block>,
    merger_norm: Tensor,
    merger_fc1: Weight,
    merger_fc1_bias: Tensor,
    merger_fc2: Weight,
    merger_fc2_bias: Tensor,
    rope: RopeTable,
}

/// Block outputs (window order), for parity tests.
#[derive(Default)]
pub struct VisionTaps {
    pub patch_embed: Option<Tensor>,
    pub blocks: Vec<Tensor>,
}

impl VisionModel {
    pub fn patch_dim(cfg: &VisionConfig) -> usize {
        3 * cfg.temporal_patch * cfg.patch * cfg.patch
    }

    pub fn new(gpu: &crate::gpu::Gpu, cfg: &VisionConfig, p: &Params) -> MResult<VisionModel> {
        let (c, i) = (cfg.hidden, cfg.intermediate);
        if c % cfg.heads != 0 {
            return Err(ModelError::Config(format!("vision hidden {c} is not a multiple of {} heads", cfg.heads)));
        }
        let mut blocks = Vec::with_capacity(cfg.depth);
        for b in 0..cfg.depth {
            let n = |s: &str| format!("visual.blocks.{b}.{s}");
            blocks.push(Block {
                norm1: p.vector(&n("norm1.weight"), c)?,
                qkv: p.matrix(&n("attn.qkv.weight"), 3 * c, c)?,
                qkv_bias: p.vector(&n("attn.qkv.bias"), 3 * c)?,
                proj: p.matrix(&n("attn.proj.weight"), c, c)?,
                proj_bias: p.vector(&n("attn.proj.bias"), c)?,
                norm2: p.vector(&n("norm2.weight"), c)?,
                gate: p.matrix(&n("mlp.gate_proj.weight"), i, c)?,
                gate_bias: p.vector(&n("mlp.gate_proj.bias"), i)?,
                up: p.matrix(&n("mlp.up_proj.weight"), i, c)?,
                up_bias: p.vector(&n("mlp.up_proj.bias"), i)?,
                down: p.matrix(&n("mlp.down_proj.weight"), c, i)?,
                down_bias: p.vector(&n("mlp.down_proj.bias"), c)?,
            });
        }
        let cm = c * cfg.merge * cfg.merge;
        Ok(VisionModel {
            cfg: cfg.clone(),
            patch_embed: p.matrix("visual.patch_embed.proj.weight", c, Self::patch_dim(cfg))?,
            blocks,
            merger_norm: p.vector("visual.merger.ln_q.weight", c)?,
            merger_fc1: p.matrix("visual.merger.mlp.0.weight", cm, cm)?,
            merger_fc1_bias: p.vector("visual.merger.mlp.0.bias", cm)?,
            merger_fc2: p.matrix("visual.merger.mlp.2.weight", cfg.out_hidden, cm)?,
            merger_fc2_bias: p.vector("visual.merger.mlp.2.bias", cfg.out_hidden)?,
            rope: RopeTable::new(gpu, RopeKind::QwenVision { theta: 10_000.0 }, c / cfg.heads)?,
        })
    }

    /// Merged tokens per grid (what the prompt needs as pad tokens).
    pub fn tokens(&self, g: Grid) -> usize {
        g.t * g.h * g.w / (self.cfg.merge * self.cfg.merge)
    }

    /// Encode `patches` [sum t*h*w, patch_dim] (processor order) of the given grids; returns the
    /// merged embeddings [sum tokens, out_hidden] in the same order.
    pub fn forward(&self, rec: &mut Recorder, patches: &[f32], grids: &[Grid], mut taps: Option<&mut VisionTaps>) -> MResult<Tensor> {
        let c = &self.cfg;
        let gpu = rec.gpu;
        let pd = Self::patch_dim(c);
        let unit = c.merge * c.merge;
        for g in grids {
            if g.t == 0 || g.h == 0 || g.w == 0 || g.h % c.merge != 0 || g.w % c.merge != 0 {
                return Err(ModelError::Input(format!(
                    "an image grid of {}x{}x{} patches: images must be at least {} px on each side, resized to a multiple of {}",
                    g.t,
                    g.h,
                    g.w,
                    c.patch * c.merge,
                    c.patch * c.merge
                )));
            }
        }
        let n: usize = grids.iter().map(|g| g.t * g.h * g.w).sum();
        if patches.len() != n * pd {
            return Err(ModelError::Input(format!("{} patch values for {n} patches of {pd}", patches.len())));
        }
        let layout = VisionLayout::new(grids, c.merge, c.window / c.patch / c.merge);
        // Window order from the start: the patch embedding is per row, so permuting its input is
        // permuting its output.
        let mut permuted = Vec::with_capacity(patches.len());
        for &k in &layout.window {
            permuted.extend_from_slice(&patches[k * unit * pd..(k + 1) * unit * pd]);
        }
        let px = gpu.upload_act(&permuted, &[n, pd])?;
        let pos: Vec<i32> = layout.positions.iter().flatten().copied().collect();
        let pos = gpu.upload_i32(&pos, &[n, 2])?;
        let cu_window = gpu.upload_u32(&layout.cu_window, &[layout.cu_window.len()])?;
        let cu_full = gpu.upload_u32(&layout.cu_full, &[layout.cu_full.len()])?;

        let (h, heads) = (c.hidden, c.heads);
        let hd = h / heads;
        let mut x = linear(rec, &px, &self.patch_embed, Epilogue::none())?;
        if let Some(t) = taps.as_deref_mut() {
            t.patch_embed = Some(x.clone());
        }
        for (b, w) in self.blocks.iter().enumerate() {
            let seg = if c.fullatt_blocks.contains(&b) { &cu_full } else { &cu_window };
            let y = rms_norm(rec, &x, &w.norm1, EPS)?;
            let qkv = linear(rec, &y, &w.qkv, Epilogue::bias(Some(&w.qkv_bias)))?;
            rope_inplace(rec, &qkv, heads, 3 * h, 0, &pos, &self.rope)?;
            rope_inplace(rec, &qkv, heads, 3 * h, h, &pos, &self.rope)?;
            let view = |off| HeadsView { t: &qkv, tokens: n, heads, stride: 3 * h, off };
            let o = attention(
                rec,
                &Attention { q: view(0), k: view(h), v: view(2 * h), head_dim: hd, causal: false, q_pos0: 0, segments: Some(seg), scale: 1.0 / (hd as f32).sqrt() },
            )?;
            x = linear(rec, &o, &w.proj, Epilogue::bias(Some(&w.proj_bias)).with_add(&x))?;
            let y = rms_norm(rec, &x, &w.norm2, EPS)?;
            let g = linear(rec, &y, &w.gate, Epilogue::bias(Some(&w.gate_bias)).with_act(Activation::Silu))?;
            let u = linear(rec, &y, &w.up, Epilogue::bias(Some(&w.up_bias)).with_mul(&g))?;
            x = linear(rec, &u, &w.down, Epilogue::bias(Some(&w.down_bias)).with_add(&x))?;
            if let Some(t) = taps.as_deref_mut() {
                t.blocks.push(x.clone());
            }
            rec.flush()?; // let the next block reuse this one's temporaries
        }
        let m = rms_norm(rec, &x, &self.merger_norm, EPS)?.reshape(&[n / unit, h * unit]);
        let m = linear(rec, &m, &self.merger_fc1, Epilogue::bias(Some(&self.merger_fc1_bias)).with_act(Activation::Gelu))?;
        let m = linear(rec, &m, &self.merger_fc2, Epilogue::bias(Some(&self.merger_fc2_bias)))?;
        let inv = layout.inverse();
        let inv = gpu.upload_u32(&inv, &[inv.len()])?;
        Ok(gather_rows(rec, &m, &inv)?)
    }
}

/// Put vision embeddings into the prompt's embeddings: the k-th image/video pad token of `ids`
/// takes row k of `vision` (images and videos concatenated in prompt order).
pub fn merge_into_prompt(rec: &mut Recorder, embeds: &Tensor, ids: &[u32], pads: [u32; 2], vision: &Tensor) -> MResult<()> {
    let row = (embeds.cols() * rec.gpu.act.size()) as u64;
    let total = ids.iter().filter(|i| pads.contains(i)).count();
    if total != vision.rows() || vision.cols() != embeds.cols() {
        return Err(ModelError::Input(format!("{total} vision pad tokens for {} vision embeddings of {}", vision.rows(), vision.cols())));
    }
    let (mut i, mut k) = (0, 0u64);
    while i < ids.len() {
        if !pads.contains(&ids[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < ids.len() && ids[i] == ids[s] {
            i += 1;
        }
        let len = (i - s) as u64;
        rec.copy(vision, k * row, embeds, s as u64 * row, len * row);
        k += len;
    }
    Ok(())
}
