//! The Qwen2.5-VL vision encoder (spec 6.1): patch embedding (a linear map of 14x14x2 patches),
//! blocks of x += proj(Attn(RMSNorm(x))) with 2D RoPE and window attention (full attention
//! within each temporal group in the `fullatt` blocks), x += down(SiLU(gate(h)) * up(h)); then the
//! patch merger RMSNorm → 2x2 concat → Linear → GELU → Linear, back in the processor's order.

use super::vision_layout::{Grid, VisionLayout};
use super::VisionConfig;
use crate::gpu::{Recorder, Tensor};
use crate::kernels::attention::{attention, Attention, HeadsView};
use crate::kernels::gather::gather_rows;
use crate::kernels::rope::{rope_inplace, RopeKind, RopeTable};
use crate::model::layers::{GatedMlp, Linear, Mlp, RmsNorm};
use crate::model::{MResult, ModelError, Params, Scope};

const EPS: f32 = 1e-6;

/// Self-attention with a fused, biased qkv projection and 2D RoPE, within segments of tokens
/// (windows, or whole temporal groups in the `fullatt` blocks).
struct VisionAttention {
    qkv: Linear,
    proj: Linear,
    heads: usize,
}

impl VisionAttention {
    /// residual + proj(Attn(qkv(y))) at 2D positions `pos` ([tokens, 2]) within `segments`.
    /// Each temporary is dropped and submitted once read, so that the next one takes its buffer
    /// (`y` and the attention's output share one, proj's output reuses qkv's bucket-mates).
    fn forward(&self, rec: &mut Recorder, y: Tensor, residual: &Tensor, pos: &Tensor, rope: &RopeTable, segments: &Tensor) -> MResult<Tensor> {
        let (n, h, heads) = (y.rows(), y.cols(), self.heads);
        let hd = h / heads;
        let qkv = self.qkv.forward(rec, &y)?;
        drop(y);
        rec.flush()?;
        rope_inplace(rec, &qkv, heads, 3 * h, 0, pos, rope)?;
        rope_inplace(rec, &qkv, heads, 3 * h, h, pos, rope)?;
        let view = |off| HeadsView { t: &qkv, tokens: n, heads, stride: 3 * h, off };
        let o = attention(
            rec,
            &Attention { q: view(0), k: view(h), v: view(2 * h), head_dim: hd, causal: false, q_pos0: 0, segments: Some(segments), scale: 1.0 / (hd as f32).sqrt() },
        )?;
        drop(qkv);
        rec.flush()?;
        self.proj.forward_add(rec, &o, residual)
    }
}

/// A ViT block (`visual.blocks.N`): x += proj(Attn(norm1 x)); x += mlp(norm2 x).
struct Block {
    norm1: RmsNorm,
    attn: VisionAttention,
    norm2: RmsNorm,
    mlp: GatedMlp,
}

impl Block {
    fn load(p: &Scope, cfg: &VisionConfig) -> MResult<Block> {
        let c = cfg.hidden;
        Ok(Block {
            norm1: RmsNorm::load(&p.pp("norm1"), c, EPS)?,
            attn: VisionAttention { qkv: Linear::load(&p.pp("attn.qkv"), 3 * c, c)?, proj: Linear::load(&p.pp("attn.proj"), c, c)?, heads: cfg.heads },
            norm2: RmsNorm::load(&p.pp("norm2"), c, EPS)?,
            mlp: GatedMlp::load(&p.pp("mlp"), c, cfg.intermediate, true)?,
        })
    }
}

/// The patch merger (`visual.merger`): RMSNorm, 2x2 neighbours side by side, Linear → GELU → Linear.
struct PatchMerger {
    ln_q: RmsNorm,
    mlp: Mlp,
    unit: usize,
}

impl PatchMerger {
    fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        let (n, h) = (x.rows(), x.cols());
        let m = self.ln_q.forward(rec, x)?.reshape(&[n / self.unit, h * self.unit]);
        self.mlp.forward(rec, &m)
    }
}

pub struct VisionModel {
    pub cfg: VisionConfig,
    patch_embed: Linear,
    blocks: Vec<Block>,
    merger: PatchMerger,
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
        let c = cfg.hidden;
        if c % cfg.heads != 0 {
            return Err(ModelError::Config(format!("vision hidden {c} is not a multiple of {} heads", cfg.heads)));
        }
        let visual = p.pp("visual");
        let blocks = (0..cfg.depth).map(|b| Block::load(&visual.pp("blocks").pp(b), cfg)).collect::<MResult<Vec<_>>>()?;
        let unit = cfg.merge * cfg.merge;
        let merger = visual.pp("merger");
        Ok(VisionModel {
            cfg: cfg.clone(),
            patch_embed: Linear::load_no_bias(&visual.pp("patch_embed.proj"), c, Self::patch_dim(cfg))?,
            blocks,
            merger: PatchMerger {
                ln_q: RmsNorm::load(&merger.pp("ln_q"), c, EPS)?,
                mlp: Mlp::load(&merger.pp("mlp"), ["0", "2"], c * unit, c * unit, cfg.out_hidden)?,
                unit,
            },
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
        drop(permuted);
        let pos: Vec<i32> = layout.positions.iter().flatten().copied().collect();
        let pos = gpu.upload_i32(&pos, &[n, 2])?;
        let cu_window = gpu.upload_u32(&layout.cu_window, &[layout.cu_window.len()])?;
        let cu_full = gpu.upload_u32(&layout.cu_full, &[layout.cu_full.len()])?;

        let mut x = self.patch_embed.forward(rec, &px)?;
        drop(px); // its buffer goes with the first block's submission
        if let Some(t) = taps.as_deref_mut() {
            t.patch_embed = Some(x.clone());
        }
        for (b, block) in self.blocks.iter().enumerate() {
            let seg = if c.fullatt_blocks.contains(&b) { &cu_full } else { &cu_window };
            let y = block.norm1.forward(rec, &x)?;
            x = block.attn.forward(rec, y, &x, &pos, &self.rope, seg)?;
            rec.flush()?; // the block's input and the attention's output: buffers for the MLP
            let y = block.norm2.forward(rec, &x)?;
            x = block.mlp.forward_add(rec, &y, &x)?;
            if let Some(t) = taps.as_deref_mut() {
                t.blocks.push(x.clone());
            }
            rec.flush()?; // let the next block reuse this one's temporaries
        }
        let m = self.merger.forward(rec, &x)?;
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
