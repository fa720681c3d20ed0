//! VGGT's aggregator (spec 4.3): ImageNet-normalised frames → DINOv2 patch embedding (conv 14x14 as
//! a linear map of patches, cls + registers, resampled positional embedding, `dino_depth` ViT
//! blocks, final LayerNorm) → camera and register tokens (frame 0 has its own) + patch tokens →
//! `depth` pairs of a frame block (attention within each frame) and a global block (attention over
//! all frames), both with per-head q/k LayerNorm, 2D RoPE (θ = 100) and LayerScale. Layer i's output is the
//! frame block's and the global block's outputs concatenated along channels, [frames·P, 2·dim],
//! which is kept as its two halves (`LayerOutput`) so that no buffer is twice as wide.

use std::collections::HashMap;
use std::sync::Mutex;

use super::block::{Block, BlockConfig};
use super::pos_embed::resample;
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::rope::{RopeKind, RopeTable};
use crate::model::layers::{LayerNorm, Linear};
use crate::model::{MResult, ModelError, Params, Scope};
use crate::weights::shapes::VggtDims;
use crate::weights::PackedWeight;

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// DINOv2's LayerNorms use 1e-6; the aggregator's blocks (and their q/k norms) PyTorch's 1e-5.
const DINO_EPS: f32 = 1e-6;
const BLOCK_EPS: f32 = 1e-5;
const ROPE_THETA: f32 = 100.0;
/// Tokens per MLP pass (hidden activations of at most this many rows at a time).
pub const MLP_CHUNK: usize = 4096;

/// Frames given to the aggregator: values in [0, 1], [frames, 3, height, width] row-major.
pub struct Frames<'a> {
    pub pixels: &'a [f32],
    pub count: usize,
    pub height: usize,
    pub width: usize,
}

/// Intermediate outputs for parity tests: DINO blocks, its normed output, frame and global blocks.
#[derive(Default)]
pub struct AggregatorTaps {
    pub dino_blocks: Vec<Tensor>,
    pub dino_out: Option<Tensor>,
    pub frame_blocks: Vec<Tensor>,
    pub global_blocks: Vec<Tensor>,
}

/// One layer's output, upstream's concat(frame, global) along channels, as its two halves, each
/// [frames · tokens, dim] (or seen as [frames, tokens, dim]). Consumers read the halves where
/// they are: the concatenation is 2·dim wide, and at 32 frames of 518x392 (33 312 tokens) that is
/// 136 MB in f16, above WebGPU's default 128 MiB storage binding.
#[derive(Clone, Debug)]
pub struct LayerOutput {
    /// The frame block's output: channels 0 .. dim.
    pub frame: Tensor,
    /// The global block's output: channels dim .. 2·dim.
    pub global: Tensor,
}

impl LayerOutput {
    pub fn halves(&self) -> [&Tensor; 2] {
        [&self.frame, &self.global]
    }

    /// Both halves seen with another shape (of one half's element count).
    pub fn reshape(&self, shape: &[usize]) -> LayerOutput {
        LayerOutput { frame: self.frame.reshape(shape), global: self.global.reshape(shape) }
    }
}

pub struct AggregatorOutput {
    /// (layer index, its output) for each requested layer, in order.
    pub layers: Vec<(usize, LayerOutput)>,
    pub frames: usize,
    /// Tokens per frame: 1 camera + registers + patches.
    pub tokens: usize,
    /// Index of the first patch token in a frame (1 + registers).
    pub patch_start: usize,
    /// Patch grid (rows, columns).
    pub grid: (usize, usize),
}

pub struct Aggregator {
    pub dims: VggtDims,
    patch_embed: Linear,
    /// cls token + its positional embedding, then DINO's registers: [1 + R, dim] (CPU).
    dino_prefix: Vec<f32>,
    /// The trained positional embedding of the patch grid, [M·M, dim] (CPU), and M.
    pos_table: Vec<f32>,
    pos_grid: usize,
    /// Camera + register tokens: [2 · (1 + R), dim] (CPU): frame 0's, then the other frames'.
    specials: Vec<f32>,
    dino: Vec<Block>,
    dino_norm: LayerNorm,
    frame: Vec<Block>,
    global: Vec<Block>,
    rope: RopeTable,
    /// Tokens per MLP pass (`MLP_CHUNK` unless a caller trades memory for fewer passes).
    pub mlp_chunk: usize,
    /// Resampled positional embeddings per patch grid.
    pos_cache: Mutex<HashMap<(usize, usize), Vec<f32>>>,
}

/// A small parameter's values on the CPU (read back once at load).
async fn values(gpu: &Gpu, p: &Scope<'_>, name: &str, len: usize) -> MResult<Vec<f32>> {
    let w = p.matrix(name, 1, len)?;
    let size = w.buf.raw.size();
    let t = Tensor { buf: w.buf.clone(), shape: vec![size as usize / 4], dtype: crate::gpu::DType::U32 };
    let bytes = gpu.read_bytes(&t, 0, size).await?;
    let words = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(PackedWeight { format: w.format, rows: w.rows, cols: w.cols, words, scale_offset: w.scale_offset as usize }.unpack())
}

impl Aggregator {
    pub async fn new(gpu: &Gpu, dims: VggtDims, p: &Params) -> MResult<Aggregator> {
        let (d, r, heads) = (dims.dim, dims.registers, dims.heads);
        if d % heads != 0 || (d / heads) % 4 != 0 {
            return Err(ModelError::Config(format!("VGGT dim {d} with {heads} heads: the head dim must be a multiple of 4 (2D RoPE)")));
        }
        let hd = d / heads;
        let a = p.pp("vggt.aggregator");
        let pe = a.pp("patch_embed");
        let m = dims.img / dims.patch;
        let cls = values(gpu, &pe, "cls_token", d).await?;
        let pos = values(gpu, &pe, "pos_embed", (1 + m * m) * d).await?;
        let regs = values(gpu, &pe, "register_tokens", r * d).await?;
        let camera = values(gpu, &a, "camera_token", 2 * d).await?;
        let registers = values(gpu, &a, "register_token", 2 * r * d).await?;
        let mut dino_prefix: Vec<f32> = cls.iter().zip(&pos[..d]).map(|(c, q)| c + q).collect();
        dino_prefix.extend_from_slice(&regs);
        let mut specials = Vec::with_capacity(2 * (1 + r) * d);
        for f in 0..2 {
            specials.extend_from_slice(&camera[f * d..(f + 1) * d]);
            specials.extend_from_slice(&registers[f * r * d..(f + 1) * r * d]);
        }
        let dino = BlockConfig { dim: d, heads, mlp: dims.dino_mlp, eps: DINO_EPS, qk_norm: false };
        let alternating = BlockConfig { mlp: dims.mlp, eps: BLOCK_EPS, qk_norm: true, ..dino };
        let blocks = |p: Scope, depth: usize, c: &BlockConfig| (0..depth).map(|b| Block::load(&p.pp(b), c, Some(gpu))).collect::<MResult<Vec<_>>>();
        Ok(Aggregator {
            patch_embed: Linear::load(&pe.pp("patch_embed.proj"), d, 3 * dims.patch * dims.patch)?,
            dino_prefix,
            pos_table: pos[d..].to_vec(),
            pos_grid: m,
            specials,
            dino: blocks(pe.pp("blocks"), dims.dino_depth, &dino)?,
            dino_norm: LayerNorm::load(&pe.pp("norm"), d, DINO_EPS)?,
            frame: blocks(a.pp("frame_blocks"), dims.depth, &alternating)?,
            global: blocks(a.pp("global_blocks"), dims.depth, &alternating)?,
            rope: RopeTable::new(gpu, RopeKind::Vggt { theta: ROPE_THETA }, hd)?,
            pos_cache: Mutex::new(HashMap::new()),
            mlp_chunk: MLP_CHUNK,
            dims,
        })
    }

    /// Tokens per frame for a patch grid.
    pub fn tokens_per_frame(&self, grid: (usize, usize)) -> usize {
        1 + self.dims.registers + grid.0 * grid.1
    }

    fn check(&self, f: &Frames) -> MResult<(usize, usize)> {
        let p = self.dims.patch;
        if f.count == 0 {
            return Err(ModelError::Input("no frames: VGGT needs at least one".into()));
        }
        if f.height < p || f.width < p || f.height % p != 0 || f.width % p != 0 {
            return Err(ModelError::Input(format!(
                "frames of {}x{} px: VGGT needs sides that are multiples of the {p}-px patch (resize the frames first)",
                f.width, f.height
            )));
        }
        if f.pixels.len() != f.count * 3 * f.height * f.width {
            return Err(ModelError::Input(format!(
                "{} pixel values for {} frames of 3x{}x{}: all frames of one batch must have the same size",
                f.pixels.len(),
                f.count,
                f.height,
                f.width
            )));
        }
        Ok((f.height / p, f.width / p))
    }

    /// ImageNet-normalised patches [frames · h · w, 3 · p · p] in the conv weight's (c, ky, kx) order.
    fn patches(&self, f: &Frames, (gh, gw): (usize, usize)) -> Vec<f32> {
        let p = self.dims.patch;
        let (h, w) = (f.height, f.width);
        let mut out = Vec::with_capacity(f.count * gh * gw * 3 * p * p);
        for s in 0..f.count {
            for py in 0..gh {
                for px in 0..gw {
                    for c in 0..3 {
                        let plane = &f.pixels[(s * 3 + c) * h * w..(s * 3 + c + 1) * h * w];
                        for ky in 0..p {
                            let row = &plane[(py * p + ky) * w + px * p..(py * p + ky) * w + px * p + p];
                            out.extend(row.iter().map(|&v| (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c]));
                        }
                    }
                }
            }
        }
        out
    }

    fn pos_for(&self, grid: (usize, usize)) -> Vec<f32> {
        let mut cache = self.pos_cache.lock().expect("pos cache");
        cache.entry(grid).or_insert_with(|| resample(&self.pos_table, self.pos_grid, self.dims.dim, grid.0, grid.1)).clone()
    }

    /// DINOv2 over the frames' patches: per frame [cls + pos0, registers, patches·W + b + pos]
    /// through DINO's blocks and its final norm, [frames · tokens, dim]. The patches, positional
    /// embeddings and patch embeddings are dropped on return (each up to 50 MiB at 16 frames of
    /// 644x476), so that they do not stay alive through the 24 layers that follow.
    fn dino(&self, rec: &mut Recorder, f: &Frames, grid: (usize, usize), cu: &Tensor, mut taps: Option<&mut AggregatorTaps>) -> MResult<Tensor> {
        let gpu = rec.gpu;
        let d = self.dims.dim;
        let (s, hw) = (f.count, grid.0 * grid.1);
        let (pt, ps) = (self.tokens_per_frame(grid), 1 + self.dims.registers);
        let row = (d * gpu.act.size()) as u64;
        let px = gpu.upload_act(&self.patches(f, grid), &[s * hw, 3 * self.dims.patch * self.dims.patch])?;
        let pos = gpu.upload_act(&self.pos_for(grid).repeat(s), &[s * hw, d])?;
        let emb = self.patch_embed.forward_add(rec, &px, &pos)?;
        drop((px, pos));
        let prefix = gpu.upload_act(&self.dino_prefix, &[ps, d])?;
        let mut x = gpu.alloc_act(&[s * pt, d])?;
        for i in 0..s {
            rec.copy(&prefix, 0, &x, (i * pt) as u64 * row, ps as u64 * row);
            rec.copy(&emb, (i * hw) as u64 * row, &x, (i * pt + ps) as u64 * row, hw as u64 * row);
        }
        drop(emb);
        rec.flush()?; // the patches and embeddings: buffers for the first block's temporaries
        for b in &self.dino {
            x = b.forward(rec, &x, Some(cu), None, self.mlp_chunk)?;
            if let Some(t) = taps.as_deref_mut() {
                t.dino_blocks.push(x.clone());
            }
            rec.flush()?; // let the next block reuse this one's temporaries
        }
        let x = self.dino_norm.forward(rec, &x)?;
        if let Some(t) = taps {
            t.dino_out = Some(x.clone());
        }
        Ok(x)
    }

    /// Run the aggregator; keep the outputs of the layers in `keep` (others are dropped as soon as
    /// the next block has consumed them, so memory stays bounded).
    pub fn forward(&self, rec: &mut Recorder, f: &Frames, keep: &[usize], mut taps: Option<&mut AggregatorTaps>) -> MResult<AggregatorOutput> {
        let grid = self.check(f)?;
        if let Some(&bad) = keep.iter().find(|&&l| l >= self.dims.depth) {
            return Err(ModelError::Input(format!("layer {bad} requested of a {}-layer aggregator", self.dims.depth)));
        }
        let gpu = rec.gpu;
        let (d, r) = (self.dims.dim, self.dims.registers);
        let s = f.count;
        let pt = self.tokens_per_frame(grid);
        let ps = 1 + r;
        let act = gpu.act.size() as u64;
        let row = d as u64 * act;

        // DINO and the frame blocks attend within each frame.
        let cu: Vec<u32> = (0..=s).map(|i| (i * pt) as u32).collect();
        let cu = gpu.upload_u32(&cu, &[cu.len()])?;
        let x = self.dino(rec, f, grid, &cu, taps.as_deref_mut())?;

        // Camera and register tokens replace DINO's cls and registers (same count and place).
        let specials = gpu.upload_act(&self.specials, &[2 * ps, d])?;
        for i in 0..s {
            let which = if i == 0 { 0 } else { ps as u64 };
            rec.copy(&specials, which * row, &x, (i * pt) as u64 * row, ps as u64 * row);
        }
        let mut pos = Vec::with_capacity(s * pt * 2);
        for _ in 0..s {
            pos.extend(std::iter::repeat_n(0i32, 2 * ps));
            for y in 0..grid.0 {
                for xx in 0..grid.1 {
                    pos.extend([y as i32 + 1, xx as i32 + 1]);
                }
            }
        }
        let pos = gpu.upload_i32(&pos, &[s * pt, 2])?;

        let mut layers = Vec::new();
        let mut x = x;
        for l in 0..self.dims.depth {
            let fo = self.frame[l].forward(rec, &x, Some(&cu), Some((&pos, &self.rope)), self.mlp_chunk)?;
            drop(x); // the layer's input: its buffer can serve the global block
            let go = self.global[l].forward(rec, &fo, None, Some((&pos, &self.rope)), self.mlp_chunk)?;
            if let Some(t) = taps.as_deref_mut() {
                t.frame_blocks.push(fo.clone());
                t.global_blocks.push(go.clone());
            }
            if keep.contains(&l) {
                layers.push((l, LayerOutput { frame: fo.clone(), global: go.clone() }));
            }
            x = go;
            rec.flush()?;
        }
        Ok(AggregatorOutput { layers, frames: s, tokens: pt, patch_start: ps, grid })
    }
}
