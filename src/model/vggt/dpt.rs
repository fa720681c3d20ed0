//! VGGT's DPT heads (upstream heads/dpt_head.py; spec 7.2): the depth head (2 outputs: depth =
//! exp, confidence = 1 + exp) and the point head (4 outputs: world point = sign·expm1(|x|),
//! confidence = 1 + exp). Per chosen aggregator layer: LayerNorm → patch tokens as an image →
//! 1x1 projection + UV positional embedding → resample (transposed conv ×4, ×2, identity, 3x3
//! conv stride 2) → 3x3 conv to `features` channels; then RefineNet fusion from the coarsest
//! level up, output_conv1, bilinear to 14·(patch grid), + positional embedding, 3x3 conv + ReLU,
//! 1x1 conv, activation.
//!
//! Activations are channels-last images [frames, H, W, C] (see kernels::conv). Frames are
//! independent, so they run in chunks (upstream's frames_chunk_size, 8, lowered when the largest
//! intermediate of a chunk would not fit one buffer binding), each stage of a chunk its own
//! submission so that the pool reuses a stage's buffers for the next (see `run_chunk`, and
//! `layers::chunk` for the helpers).
//!
//! Differences from the upstream order of operations, exact in real arithmetic:
//! * A fusion block's 1x1 `out_conv` runs before its bilinear upsampling instead of after
//!   (align-corners bilinear weights sum to 1, so both commute, bias included): 4x fewer FLOPs.
//! * Residual units use upstream's in-place ReLU semantics: `nn.ReLU(inplace=True)` rewrites the
//!   unit's input, so the skip connection adds relu(x), not x.

use super::LayerOutput;
use crate::gpu::{DType, Gpu, Recorder, Tensor};
use crate::kernels::conv::{ConvEpilogue, ImageView, SeparablePos};
use crate::kernels::gather::place_cols;
use crate::kernels::head_act::{head_activation, ConfAct, ValueAct};
use crate::kernels::resize::bilinear;
use crate::model::layers::{chunk, Conv2d, ConvKind, LayerNorm};
use crate::model::{MResult, ModelError, Params, Scope};
use crate::weights::shapes::VggtDims;

pub const DEPTH_HEAD: &str = "vggt.depth_head.";
pub const POINT_HEAD: &str = "vggt.point_head.";
/// nn.LayerNorm's default.
const NORM_EPS: f32 = 1e-5;
/// Upstream's frames_chunk_size.
pub const DEFAULT_CHUNK: usize = 8;
/// Width of output_conv2's hidden layer (hard-coded upstream).
const HEAD_HIDDEN: usize = 32;
/// Scale of the UV positional embedding (`_apply_pos_embed`'s ratio).
const POS_RATIO: f64 = 0.1;

/// ResidualConvUnit (`resConfUnitN`): relu(x) + conv2(relu(conv1(relu(x)))), 3x3 convolutions.
struct ResUnit {
    conv1: Conv2d,
    conv2: Conv2d,
}

impl ResUnit {
    fn load(p: &Scope, f: usize) -> MResult<ResUnit> {
        let conv = |name: &str| Conv2d::load(&p.pp(name), f, f, ConvKind::Conv { k: 3, stride: 1 }, true);
        Ok(ResUnit { conv1: conv("conv1")?, conv2: conv("conv2")? })
    }

    /// With upstream's in-place ReLU (`nn.ReLU(inplace=True)` rewrites the input, so the skip
    /// adds relu(x)), + `add` fused into the last convolution.
    fn forward(&self, rec: &mut Recorder, x: &Tensor, add: Option<&Tensor>) -> MResult<Tensor> {
        let a = self.conv1.forward_with(rec, ImageView::of(x)?, true, ConvEpilogue { relu: true, ..Default::default() })?;
        self.conv2.forward_with(rec, ImageView::of(&a)?, false, ConvEpilogue { res_relu: Some(x), add, ..Default::default() })
    }
}

/// FeatureFusionBlock (`refinenetN`): [x0 + unit1(x1)] → unit2 → 1x1 out_conv → bilinear.
struct Fusion {
    unit1: Option<ResUnit>,
    unit2: ResUnit,
    out_conv: Conv2d,
}

impl Fusion {
    fn load(p: &Scope, f: usize, skip: bool) -> MResult<Fusion> {
        Ok(Fusion {
            unit1: if skip { Some(ResUnit::load(&p.pp("resConfUnit1"), f)?) } else { None },
            unit2: ResUnit::load(&p.pp("resConfUnit2"), f)?,
            out_conv: Conv2d::load(&p.pp("out_conv"), f, f, ConvKind::Conv { k: 1, stride: 1 }, true)?,
        })
    }

    /// out = unit2(x0 [+ unit1(x1)]), then out_conv and the bilinear resize to `size` (out_conv
    /// first: the two commute).
    fn forward(&self, rec: &mut Recorder, x0: &Tensor, x1: Option<&Tensor>, size: (usize, usize)) -> MResult<Tensor> {
        let out = match (x1, &self.unit1) {
            (Some(x1), Some(u1)) => u1.forward(rec, x1, Some(x0))?,
            (None, None) => x0.clone(),
            _ => unreachable!("refinenet4 alone has no skip input"),
        };
        let out = self.unit2.forward(rec, &out, None)?;
        let out = self.out_conv.forward(rec, &out)?;
        Ok(bilinear(rec, &out, size.0, size.1, None, None)?)
    }
}

/// Images and patch tokens of one forward pass.
pub struct DptInput<'a> {
    /// The aggregator outputs of the layers `VggtDims::dpt_layers` (in that order), each as its
    /// halves [frames, tokens, dim] (the head reads frame-attention output ‖ global-attention
    /// output, concatenated chunk by chunk).
    pub layers: [&'a LayerOutput; 4],
    /// (height, width) in pixels of each frame's image.
    pub frame_sizes: &'a [(usize, usize)],
    /// Index of the first patch token in a frame (1 camera token + the register tokens).
    pub patch_start: usize,
}

/// The activated outputs, f32: `values` [frames, 14·h, 14·w, C] (C = 1 for depth, 3 for world
/// points) and `conf` [frames, 14·h, 14·w], where h x w is the patch grid.
pub struct DptOutput {
    pub values: Tensor,
    pub conf: Tensor,
}

pub struct DptHead {
    dim_in: usize,
    patch: usize,
    features: usize,
    out_channels: [usize; 4],
    layers: [usize; 4],
    depth: usize,
    out_dim: usize,
    act: ValueAct,
    conf_act: ConfAct,
    norm: LayerNorm,
    projects: Vec<Conv2d>,
    /// resize_layers: 0 transposed ×4, 1 transposed ×2, 2 the identity (None), 3 3x3 stride 2.
    resize: Vec<Option<Conv2d>>,
    layer_rn: Vec<Conv2d>,
    /// refinenet1 .. refinenet4.
    refine: Vec<Fusion>,
    output_conv1: Conv2d,
    /// output_conv2: 3x3 conv → ReLU → 1x1 conv.
    output_conv2: [Conv2d; 2],
    /// Frames per chunk (at most; lowered to fit the binding limit).
    pub frames_chunk: usize,
}

/// Geometry of a forward pass, checked against the input.
#[derive(Clone, Copy, Debug)]
struct Geom {
    frames: usize,
    tokens: usize,
    img_h: usize,
    img_w: usize,
    ph: usize,
    pw: usize,
}

impl Geom {
    fn out_hw(&self, patch: usize) -> (usize, usize) {
        (self.ph * patch, self.pw * patch)
    }
}

/// The positional tables of one image size.
struct PosTables {
    projects: Vec<SeparablePos>,
    output: SeparablePos,
}

impl DptHead {
    /// The head at `prefix` (`DEPTH_HEAD` or `POINT_HEAD`), sizes from `dims`.
    pub fn new(_gpu: &Gpu, params: &Params, prefix: &str, dims: &VggtDims) -> MResult<DptHead> {
        let (out_dim, act) = match prefix {
            DEPTH_HEAD => (2, ValueAct::Exp),
            POINT_HEAD => (4, ValueAct::InvLog),
            _ => return Err(ModelError::Config(format!("unknown DPT head `{prefix}` (expected {DEPTH_HEAD} or {POINT_HEAD})"))),
        };
        let (dim_in, f, oc) = (2 * dims.dim, dims.dpt_features, dims.dpt_out_channels);
        // The UV embedding splits channels into 4 quarters (sin/cos of u, sin/cos of v).
        if f % 8 != 0 || oc.iter().any(|c| c % 4 != 0) {
            return Err(ModelError::Config(format!("DPT widths must be multiples of 4 (features of 8): features {f}, out_channels {oc:?}")));
        }
        if let Some(l) = dims.dpt_layers.iter().find(|&&l| l >= dims.depth) {
            return Err(ModelError::Config(format!("dpt_layers {:?}: layer {l} does not exist in a {}-layer aggregator", dims.dpt_layers, dims.depth)));
        }
        let p = params.pp(prefix);
        let scratch = p.pp("scratch");
        let conv = |k: usize, stride: usize| ConvKind::Conv { k, stride };
        let resize = |i: usize, kind: ConvKind| -> MResult<Option<Conv2d>> { Ok(Some(Conv2d::load(&p.pp("resize_layers").pp(i), oc[i], oc[i], kind, true)?)) };
        Ok(DptHead {
            dim_in,
            patch: dims.patch,
            features: f,
            out_channels: oc,
            layers: dims.dpt_layers,
            depth: dims.depth,
            out_dim,
            act,
            conf_act: ConfAct::Expp1,
            norm: LayerNorm::load(&p.pp("norm"), dim_in, NORM_EPS)?,
            projects: (0..4).map(|i| Conv2d::load(&p.pp("projects").pp(i), dim_in, oc[i], conv(1, 1), true)).collect::<MResult<_>>()?,
            resize: vec![resize(0, ConvKind::Transposed { k: 4 })?, resize(1, ConvKind::Transposed { k: 2 })?, None, resize(3, conv(3, 2))?],
            layer_rn: (0..4).map(|i| Conv2d::load(&scratch.pp(format!("layer{}_rn", i + 1)), oc[i], f, conv(3, 1), false)).collect::<MResult<_>>()?,
            refine: (1..=4).map(|r| Fusion::load(&scratch.pp(format!("refinenet{r}")), f, r != 4)).collect::<MResult<_>>()?,
            output_conv1: Conv2d::load(&scratch.pp("output_conv1"), f, f / 2, conv(3, 1), true)?,
            output_conv2: [
                Conv2d::load(&scratch.pp("output_conv2.0"), f / 2, HEAD_HIDDEN, conv(3, 1), true)?,
                Conv2d::load(&scratch.pp("output_conv2.2"), HEAD_HIDDEN, out_dim, conv(1, 1), true)?,
            ],
            frames_chunk: DEFAULT_CHUNK,
        })
    }

    /// The aggregator layers this head reads, from the list of all layer outputs.
    pub fn select_layers<'a>(&self, all: &'a [LayerOutput]) -> MResult<[&'a LayerOutput; 4]> {
        if all.len() != self.depth {
            return Err(ModelError::Input(format!("the DPT head needs all {} aggregator layer outputs, got {}", self.depth, all.len())));
        }
        Ok(self.layers.map(|l| &all[l]))
    }

    fn geometry(&self, gpu: &Gpu, input: &DptInput) -> MResult<Geom> {
        let bad = |m: String| Err(ModelError::Input(m));
        let shape0 = &input.layers[0].frame.shape;
        let [frames, tokens, c] = shape0[..] else {
            return bad(format!("aggregator layer outputs must be [frames, tokens, channels], got {shape0:?}"));
        };
        if 2 * c != self.dim_in {
            return bad(format!("aggregator layer outputs have 2 x {c} channels, the DPT head takes {}", self.dim_in));
        }
        for (i, l) in input.layers.iter().enumerate() {
            for t in l.halves() {
                if t.shape != *shape0 || t.dtype != gpu.act {
                    return bad(format!(
                        "aggregator layer {} output is {:?} {:?}, layer {} output {shape0:?} {:?}",
                        self.layers[i], t.shape, t.dtype, self.layers[0], gpu.act
                    ));
                }
            }
        }
        if input.frame_sizes.len() != frames {
            return bad(format!("{} frame sizes for {frames} frames of tokens", input.frame_sizes.len()));
        }
        let (img_h, img_w) = input.frame_sizes[0];
        if let Some((i, s)) = input.frame_sizes.iter().enumerate().find(|(_, s)| **s != (img_h, img_w)) {
            return bad(format!("frames have different sizes: frame 0 is {img_h}x{img_w}, frame {i} is {}x{}; resize all frames to one size", s.0, s.1));
        }
        let (ph, pw) = (img_h / self.patch, img_w / self.patch);
        if ph == 0 || pw == 0 {
            return bad(format!("{img_h}x{img_w} images are smaller than one {0}x{0} patch", self.patch));
        }
        if tokens != input.patch_start + ph * pw {
            return bad(format!(
                "each frame has {tokens} tokens, but {img_h}x{img_w} images ({ph}x{pw} patches of {}) after {} special tokens make {}",
                self.patch,
                input.patch_start,
                input.patch_start + ph * pw
            ));
        }
        Ok(Geom { frames, tokens, img_h, img_w, ph, pw })
    }

    /// Frames per chunk: at most `frames_chunk`, fewer when a chunk's largest tensor would exceed
    /// the binding limit.
    fn chunk(&self, gpu: &Gpu, g: &Geom) -> MResult<usize> {
        let (h, w) = (g.ph, g.pw);
        let (oh, ow) = g.out_hw(self.patch);
        let f = self.features;
        let per_frame =
            [g.tokens * self.dim_in, 16 * h * w * self.out_channels[0], 64 * h * w * f, oh * ow * (f / 2), oh * ow * HEAD_HIDDEN].into_iter().max().unwrap()
                * gpu.act.size();
        let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size) as usize;
        if per_frame > limit {
            return Err(ModelError::Input(format!(
                "one {}x{} frame needs a {per_frame}-byte activation in the DPT head, above this adapter's {limit}-byte binding limit",
                g.img_h, g.img_w
            )));
        }
        Ok(self.frames_chunk.clamp(1, (limit / per_frame).max(1)))
    }

    /// Run the head over every frame, chunk by chunk.
    pub fn forward(&self, gpu: &Gpu, input: &DptInput) -> MResult<DptOutput> {
        let g = self.geometry(gpu, input)?;
        let chunk = self.chunk(gpu, &g)?;
        let (oh, ow) = g.out_hw(self.patch);
        let values = gpu.alloc(&[g.frames, oh, ow, self.out_dim - 1], DType::F32)?;
        let conf = gpu.alloc(&[g.frames, oh, ow], DType::F32)?;
        let pos = self.pos_tables(gpu, &g)?;
        for frames in chunk::ranges(g.frames, chunk) {
            self.run_chunk(gpu, input, &g, &pos, frames.start, frames.len(), &values, &conf)?;
        }
        Ok(DptOutput { values, conf })
    }

    fn pos_tables(&self, gpu: &Gpu, g: &Geom) -> MResult<PosTables> {
        let aspect = g.img_w as f64 / g.img_h as f64;
        let table = |h: usize, w: usize, c: usize| -> MResult<SeparablePos> {
            let (xp, yp) = uv_pos_embed(h, w, c, aspect);
            Ok(SeparablePos::upload(gpu, h, w, c, &xp, &yp)?)
        };
        let (oh, ow) = g.out_hw(self.patch);
        Ok(PosTables { projects: self.out_channels.iter().map(|&c| table(g.ph, g.pw, c)).collect::<MResult<_>>()?, output: table(oh, ow, self.features / 2)? })
    }

    /// Frames f0 .. f0 + n into `values` / `conf`. Each level, each fusion block and the output
    /// stage is its own submission, so that the pool recycles a stage's intermediates for the
    /// next: the peak is one stage's tensors (at 518 x 518, about 125 MB per frame in f16, the
    /// refinenet1 stage) rather than the whole chunk's (about 325 MB per frame).
    #[allow(clippy::too_many_arguments)]
    fn run_chunk(&self, gpu: &Gpu, input: &DptInput, g: &Geom, pos: &PosTables, f0: usize, n: usize, values: &Tensor, conf: &Tensor) -> MResult<()> {
        let stage = |f: &dyn Fn(&mut Recorder) -> MResult<Tensor>| chunk::submitted(gpu, f);
        let rn = (0..4).map(|i| stage(&|rec| self.level(rec, input, g, pos, i, f0, n))).collect::<MResult<Vec<_>>>()?;
        let hw = |t: &Tensor| (t.shape[1], t.shape[2]);
        let out = stage(&|rec| self.refine[3].forward(rec, &rn[3], None, hw(&rn[2])))?;
        let out = stage(&|rec| self.refine[2].forward(rec, &out, Some(&rn[2]), hw(&rn[1])))?;
        let out = stage(&|rec| self.refine[1].forward(rec, &out, Some(&rn[1]), hw(&rn[0])))?;
        let (h1, w1) = hw(&rn[0]);
        let out = stage(&|rec| self.refine[0].forward(rec, &out, Some(&rn[0]), (2 * h1, 2 * w1)))?;
        drop(rn);
        stage(&|rec| {
            let out = self.output_conv1.forward(rec, &out)?;
            let (oh, ow) = g.out_hw(self.patch);
            let out = bilinear(rec, &out, oh, ow, Some(&pos.output), None)?;
            let out = self.output_conv2[0].forward_with(rec, ImageView::of(&out)?, false, ConvEpilogue { relu: true, ..Default::default() })?;
            let out = self.output_conv2[1].forward(rec, &out)?;
            head_activation(rec, &out, self.act, self.conf_act, values, conf, f0)?;
            Ok(out)
        })?;
        Ok(())
    }

    /// One pyramid level: LayerNorm of layer i's tokens → patch image → 1x1 projection + UV
    /// embedding → resample → 3x3 conv to `features` channels.
    #[allow(clippy::too_many_arguments)]
    fn level(&self, rec: &mut Recorder, input: &DptInput, g: &Geom, pos: &PosTables, i: usize, f0: usize, n: usize) -> MResult<Tensor> {
        let tokens = self.chunk_rows(rec, input.layers[i], g, f0, n)?;
        let x = self.norm.forward(rec, &tokens)?;
        let patches = ImageView { t: &x, frames: n, h: g.ph, w: g.pw, c: self.dim_in, frame_stride: g.tokens * self.dim_in, off: input.patch_start * self.dim_in };
        let x = self.projects[i].forward_with(rec, patches, false, ConvEpilogue { pos: Some(&pos.projects[i]), ..Default::default() })?;
        let x = match &self.resize[i] {
            Some(resize) => resize.forward(rec, &x)?,
            None => x,
        };
        self.layer_rn[i].forward(rec, &x)
    }

    /// Frames f0 .. f0 + n of a layer output, its halves side by side: [n, tokens, 2 * dim]
    /// (one chunk's worth, which `chunk` keeps within the binding limit).
    fn chunk_rows(&self, rec: &mut Recorder, layer: &LayerOutput, g: &Geom, f0: usize, n: usize) -> MResult<Tensor> {
        let half = self.dim_in / 2;
        let t = rec.gpu.alloc_act(&[n, g.tokens, self.dim_in])?;
        for (i, h) in layer.halves().into_iter().enumerate() {
            place_cols(rec, &h.reshape(&[g.frames * g.tokens, half]), f0 * g.tokens, &t, i * half)?;
        }
        Ok(t)
    }
}

/// torch.linspace in f32: the first half counts up from `start`, the second down from `end`.
fn linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start as f32];
    }
    let (s, e) = (start as f32, end as f32);
    let step = (e - s) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps).map(|i| if i < half { s + step * i as f32 } else { e - step * (steps - 1 - i) as f32 }).collect()
}

/// VGGT's UV positional embedding (heads/utils.py `create_uv_grid` + `position_grid_to_embed`,
/// times `_apply_pos_embed`'s 0.1) for an h x w grid of c channels in images of aspect ratio
/// `aspect` = W / H, as a separable table: channel j < c/2 of column x is `x_part[x * c/2 + j]`,
/// channel c/2 + j of row y is `y_part[y * c/2 + j]`. Within each half: sin of the c/4
/// frequencies 100^(-i / (c/4)), then cos.
pub fn uv_pos_embed(h: usize, w: usize, c: usize, aspect: f64) -> (Vec<f32>, Vec<f32>) {
    let diag = (aspect * aspect + 1.0).sqrt();
    let (span_x, span_y) = (aspect / diag, 1.0 / diag);
    let xs = linspace_f32(-span_x * (w - 1) as f64 / w as f64, span_x * (w - 1) as f64 / w as f64, w);
    let ys = linspace_f32(-span_y * (h - 1) as f64 / h as f64, span_y * (h - 1) as f64 / h as f64, h);
    let q = c / 4;
    let omega: Vec<f64> = (0..q).map(|i| 1.0 / 100f64.powf(i as f64 / q as f64)).collect();
    let embed = |coords: &[f32]| -> Vec<f32> {
        coords
            .iter()
            .flat_map(|&p| {
                let sin = omega.iter().map(move |o| (p as f64 * o).sin());
                let cos = omega.iter().map(move |o| (p as f64 * o).cos());
                sin.chain(cos).map(|v| (v as f32) * POS_RATIO as f32)
            })
            .collect()
    };
    (embed(&xs), embed(&ys))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn linspace_matches_torch_endpoints() {
        let v = linspace_f32(-0.5, 0.5, 5);
        assert_eq!(v, vec![-0.5, -0.25, 0.0, 0.25, 0.5]);
        assert_eq!(linspace_f32(0.3, 0.3, 1), vec![0.3]);
    }
    #[test]
    fn uv_embedding_layout() {
        // 1 x 2 grid, 8 channels: u = -/+ span_x/2, v = 0.
        let (xp, yp) = uv_pos_embed(1, 2, 8, 1.0);
        assert_eq!((xp.len(), yp.len()), (8, 4));
        let u = -(1.0f64 / 2f64.sqrt()) / 2.0;
        assert!((xp[0] as f64 - 0.1 * u.sin()).abs() < 1e-7);
        assert!((xp[2] as f64 - 0.1 * u.cos()).abs() < 1e-7);
        // Two frequencies: 100^0 and 100^(-1/2).
        assert!((xp[1] as f64 - 0.1 * (u / 10.0).sin()).abs() < 1e-7);
        assert_eq!(yp, vec![0.0, 0.0, 0.1, 0.1]);
    }
}
