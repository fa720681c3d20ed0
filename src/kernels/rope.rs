//! Rotary position embeddings in place, in the four variants of the model (see shaders/rope.wgsl).

use super::{check_act, ACTS, ROPE_WGSL, FLAT_WG};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Gpu, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeKind {
    /// Plain 1D RoPE over the whole head: one position per token.
    OneD { theta: f32 },
    /// Qwen2-VL multimodal RoPE: positions (t, h, w); pairs 0..s0 use t, s0..s0+s1 h, the rest w.
    MRope { theta: f32, sections: [usize; 3] },
    /// Qwen2.5-VL ViT 2D RoPE: positions (row, col); rotary dim head_dim / 2, halves row then col.
    QwenVision { theta: f32 },
    /// VGGT 2D RoPE: positions (y, x); the head's first half rotated by y, the second by x.
    Vggt { theta: f32 },
}

/// Inverse frequencies as PyTorch computes them in f32: 1 / theta^(2k / dim).
pub fn inv_freq(theta: f32, dim: usize) -> Vec<f32> {
    (0..dim / 2).map(|k| 1.0f32 / theta.powf((2 * k) as f32 / dim as f32)).collect()
}

/// The per-variant layout and the frequency table on the GPU.
pub struct RopeTable {
    pub kind: RopeKind,
    pub head_dim: usize,
    pub n_parts: usize,
    pub half: usize,
    pub sec: [usize; 2],
    /// Position components per token (1, 2 or 3).
    pub n_comp: usize,
    pub freq: Vec<f32>,
    freq_gpu: Tensor,
}

impl RopeTable {
    pub fn new(gpu: &Gpu, kind: RopeKind, head_dim: usize) -> Result<RopeTable> {
        let bad = |m: String| Err(shape_err("rope", m));
        let (n_parts, half, sec, n_comp, freq) = match kind {
            RopeKind::OneD { theta } => (1, head_dim / 2, [head_dim / 2, head_dim / 2], 1, inv_freq(theta, head_dim)),
            RopeKind::MRope { theta, sections } => {
                if sections.iter().sum::<usize>() != head_dim / 2 {
                    return bad(format!("M-RoPE sections {sections:?} must sum to head_dim/2 = {}", head_dim / 2));
                }
                (1, head_dim / 2, [sections[0], sections[0] + sections[1]], 3, inv_freq(theta, head_dim))
            }
            RopeKind::QwenVision { theta } => {
                let f = inv_freq(theta, head_dim / 2);
                let q = f.len();
                (1, head_dim / 2, [q, 2 * q], 2, f.iter().chain(f.iter()).copied().collect())
            }
            RopeKind::Vggt { theta } => (2, head_dim / 4, [0, 0], 2, inv_freq(theta, head_dim / 2)),
        };
        if head_dim % (2 * n_parts) != 0 || freq.len() != half {
            return bad(format!("head dim {head_dim} does not suit {kind:?}"));
        }
        let freq_gpu = gpu.upload_f32(&freq, &[freq.len()])?;
        Ok(RopeTable { kind, head_dim, n_parts, half, sec, n_comp, freq, freq_gpu })
    }
}

impl RopeTable {
    /// The inverse frequencies on the GPU (f32 [half]).
    pub fn freq_tensor(&self) -> &Tensor {
        &self.freq_gpu
    }
}

crate::uniform_params! {
    pub struct RopeParams {
        n_tok: u32,
        n_heads: u32,
        head_dim: u32,
        token_stride: u32,
        off: u32,
        n_parts: u32,
        half: u32,
        sec0: u32,
        sec1: u32,
        n_comp: u32,
    }
}

pub static ROPE: Contract = Contract {
    src: ROPE_WGSL,
    params: RopeParams::FIELDS,
    slots: &[Slot::write("X", "array<Act>"), Slot::read("POS", "array<i32>"), Slot::read("FREQ", "array<f32>")],
    entries: &[Entry::new("rope", [FLAT_WG, 1, 1])],
};

/// The rope launch (one variant per activation type: the four kinds differ in parameters only).
pub fn choice(act: DType) -> Launch {
    Launch::new(&ROPE, "rope", Variant::new(act))
}

/// Every variant `rope_inplace` can produce.
pub fn launches() -> Vec<Launch> {
    ACTS.map(choice).to_vec()
}

/// Rotate `heads` heads per token, starting at `off` within tokens of `token_stride` elements.
/// `pos` is I32 [tokens, n_comp].
pub fn rope_inplace(rec: &mut Recorder, x: &Tensor, heads: usize, token_stride: usize, off: usize, pos: &Tensor, table: &RopeTable) -> Result<()> {
    let gpu = rec.gpu;
    check_act("rope", "X", x, gpu)?;
    if token_stride == 0 || x.numel() % token_stride != 0 || off + heads * table.head_dim > token_stride {
        return Err(shape_err("rope", format!("{heads} heads of {} at offset {off} do not fit tokens of {token_stride}", table.head_dim)));
    }
    let n_tok = x.numel() / token_stride;
    if pos.dtype != DType::I32 || pos.numel() != n_tok * table.n_comp {
        return Err(shape_err("rope", format!("positions must be I32 [{n_tok}, {}], got {:?} {:?}", table.n_comp, pos.shape, pos.dtype)));
    }
    let launch = choice(gpu.act);
    let p = RopeParams {
        n_tok: n_tok as u32,
        n_heads: heads as u32,
        head_dim: table.head_dim as u32,
        token_stride: token_stride as u32,
        off: off as u32,
        n_parts: table.n_parts as u32,
        half: table.half as u32,
        sec0: table.sec[0] as u32,
        sec1: table.sec[1] as u32,
        n_comp: table.n_comp as u32,
    };
    let total = (n_tok * heads * table.head_dim / 2) as u32;
    let binds = [ROPE.bind("X", x), ROPE.bind("POS", pos), ROPE.bind("FREQ", &table.freq_gpu)];
    rec.dispatch_flat(launch.pipeline(gpu), &p, &binds, launch.entry().groups(total));
    Ok(())
}
