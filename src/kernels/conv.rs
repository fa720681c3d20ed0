//! Convolutions of channels-last images (the DPT heads): `conv2d` (any odd kernel, stride,
//! padding (k-1)/2) and `conv_transpose2d` with kernel == stride. An image batch is a tensor of
//! shape [frames, H, W, C] (row-major, a pixel's channels contiguous), or an `ImageView` into a
//! wider tensor (patch tokens after special tokens). Weights are read in the package's packed
//! form: the [out, in*k*k] matrix of a conv weight, the [in, out*k*k] matrix of a transposed
//! one, dequantised in the kernel. The layouts and the fused epilogue are documented in
//! shaders/conv.wgsl; the GEMM is the core shared with matmul, at the device's `Gpu::gemm_tile`.

use super::{check_act, ACTS, CONV_WGSL, GEMM_ENTRY};
use crate::gpu::{error::shape_err, Contract, DType, GemmTile, Gpu, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};
use crate::weights::{Weight, WeightFormat};

/// `frames` images of [h, w, c] inside `t`; frame f starts at element `off + f * frame_stride`.
#[derive(Clone, Copy, Debug)]
pub struct ImageView<'a> {
    pub t: &'a Tensor,
    pub frames: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub frame_stride: usize,
    pub off: usize,
}

impl<'a> ImageView<'a> {
    /// A dense [frames, h, w, c] tensor.
    pub fn of(t: &'a Tensor) -> Result<ImageView<'a>> {
        match t.shape[..] {
            [frames, h, w, c] => Ok(ImageView { t, frames, h, w, c, frame_stride: h * w * c, off: 0 }),
            _ => Err(shape_err("conv", format!("an image batch must be [frames, H, W, C], got {:?}", t.shape))),
        }
    }

    fn check(&self, kernel: &'static str) -> Result<()> {
        if self.frames == 0 || self.h == 0 || self.w == 0 || self.c == 0 {
            return Err(shape_err(kernel, format!("empty image batch {self:?}")));
        }
        let need = self.off + (self.frames - 1) * self.frame_stride + self.h * self.w * self.c;
        if need > self.t.numel() || self.frame_stride < self.h * self.w * self.c {
            return Err(shape_err(
                kernel,
                format!(
                    "view of {} frames of {}x{}x{} (stride {}, offset {}) does not fit a tensor of shape {:?}",
                    self.frames, self.h, self.w, self.c, self.frame_stride, self.off, self.t.shape
                ),
            ));
        }
        Ok(())
    }
}

/// A positional table that depends on the column for channels below C/2 and on the row for the
/// others (VGGT's UV sin/cos embedding): f32 values, first [w, C/2] then [h, C/2].
pub struct SeparablePos {
    pub t: Tensor,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl SeparablePos {
    /// `x_part[x * C/2 + j]` and `y_part[y * C/2 + j]`.
    pub fn upload(gpu: &Gpu, h: usize, w: usize, c: usize, x_part: &[f32], y_part: &[f32]) -> Result<SeparablePos> {
        if c % 2 != 0 || x_part.len() != w * c / 2 || y_part.len() != h * c / 2 {
            return Err(shape_err(
                "pos",
                format!("a separable table of {h}x{w}x{c} needs {} + {} values, got {} + {}", w * c / 2, h * c / 2, x_part.len(), y_part.len()),
            ));
        }
        let all: Vec<f32> = x_part.iter().chain(y_part).copied().collect();
        Ok(SeparablePos { t: gpu.upload_f32(&all, &[all.len()])?, h, w, c })
    }

    pub(crate) fn check(&self, kernel: &'static str, h: usize, w: usize, c: usize) -> Result<()> {
        if (self.h, self.w, self.c) != (h, w, c) {
            return Err(shape_err(kernel, format!("positional table is {}x{}x{}, the output {h}x{w}x{c}", self.h, self.w, self.c)));
        }
        Ok(())
    }
}

/// What happens to each output: `max(acc + bias, 0 if relu) + pos + max(res, 0) + add`.
#[derive(Clone, Copy, Default)]
pub struct ConvEpilogue<'a> {
    pub bias: Option<&'a Tensor>,
    pub relu: bool,
    pub pos: Option<&'a SeparablePos>,
    /// A residual added after a ReLU (VGGT's residual units apply their in-place ReLU to it).
    pub res_relu: Option<&'a Tensor>,
    pub add: Option<&'a Tensor>,
}

impl<'a> ConvEpilogue<'a> {
    pub fn bias(b: Option<&'a Tensor>) -> Self {
        ConvEpilogue { bias: b, ..Default::default() }
    }
}

crate::uniform_params! {
    /// M, N, K: the GEMM core's sizes (named as it reads them).
    #[allow(non_snake_case)]
    pub struct ConvParams {
        h_in: u32,
        w_in: u32,
        c_in: u32,
        k: u32,
        h_out: u32,
        w_out: u32,
        c_out: u32,
        stride: u32,
        pad: u32,
        kp: u32,
        soff: u32,
        x_fstride: u32,
        x_off: u32,
        M: u32,
        N: u32,
        K: u32,
    }
}

pub static CONV: Contract = Contract {
    src: CONV_WGSL,
    params: ConvParams::FIELDS,
    slots: &[
        Slot::read("X", "array<Act>"),
        Slot::read("W", "array<u32>"),
        Slot::write("Y", "array<Act>"),
        Slot::read("BIASES", "array<f32>").when("BIAS"),
        Slot::read("POS", "array<f32>").when("POS"),
        Slot::read("REST", "array<Act>").when("RES"),
        Slot::read("ADDT", "array<Act>").when("ADD"),
    ],
    entries: &[GEMM_ENTRY],
};

/// What selects a conv variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvChoice {
    pub act: DType,
    /// `conv_transpose2d` (CONVT, weights read along N) rather than `conv2d` (CONV).
    pub transposed: bool,
    pub format: WeightFormat,
    pub relu_in: bool,
    pub bias: bool,
    pub relu: bool,
    pub pos: bool,
    pub res: bool,
    pub add: bool,
    pub tile: GemmTile,
}

impl ConvChoice {
    pub fn launch(self) -> Launch {
        let variant = Variant::new(self.act)
            .flag("GEMM")
            .flag(if self.transposed { "CONVT" } else { "CONV" })
            .flag_if(self.transposed, "B_KN")
            .flag(self.format.flag())
            .flag_if(self.relu_in, "RELU_IN")
            .flag_if(self.bias, "BIAS")
            .flag_if(self.relu, "RELU")
            .flag_if(self.pos, "POS")
            .flag_if(self.res, "RES")
            .flag_if(self.add, "ADD");
        Launch::new(&CONV, "gemm", self.tile.apply(variant))
    }
}

/// Every variant `conv2d` and `conv_transpose2d` can produce: every weight format, fused
/// epilogue and tiling.
pub fn launches() -> Vec<Launch> {
    let formats = [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4];
    let mut out = Vec::new();
    for act in ACTS {
        for transposed in [false, true] {
            for format in formats {
                for bits in 0..64 {
                    let on = |i: u32| bits & (1 << i) != 0;
                    for tile in GemmTile::all_for(act) {
                        let c = ConvChoice { act, transposed, format, relu_in: on(0), bias: on(1), relu: on(2), pos: on(3), res: on(4), add: on(5), tile };
                        out.push(c.launch());
                    }
                }
            }
        }
    }
    out
}

/// Y = conv(relu?(X)) with a k x k kernel, `stride`, zero padding (k - 1) / 2, and the epilogue.
/// `w` is the [c_out, c_in * k * k] matrix. Returns [frames, h_out, w_out, c_out].
pub fn conv2d(rec: &mut Recorder, x: ImageView, w: &Weight, k: usize, stride: usize, relu_in: bool, epi: ConvEpilogue) -> Result<Tensor> {
    if k == 0 || k % 2 == 0 || stride == 0 {
        return Err(shape_err("conv2d", format!("kernel {k} stride {stride}: the kernel must be odd and the stride positive")));
    }
    if w.cols != x.c * k * k {
        return Err(shape_err("conv2d", format!("{} input channels with a {k}x{k} kernel need {} weight columns, the weight has {}", x.c, x.c * k * k, w.cols)));
    }
    let pad = (k - 1) / 2;
    let (h_out, w_out) = ((x.h + 2 * pad - k) / stride + 1, (x.w + 2 * pad - k) / stride + 1);
    let (m, n, kk) = (h_out * w_out, w.rows, x.c * k * k);
    let g = Geometry { h_out, w_out, c_out: w.rows, k, stride, pad, m, n, kk };
    launch(rec, "conv2d", false, x, w, g, relu_in, epi)
}

/// Transposed convolution with kernel == stride == k: [frames, h, w, c_in] → [frames, h*k, w*k,
/// c_out]. `w` is the [c_in, c_out * k * k] matrix.
pub fn conv_transpose2d(rec: &mut Recorder, x: ImageView, w: &Weight, k: usize, relu_in: bool, epi: ConvEpilogue) -> Result<Tensor> {
    if k == 0 || w.cols % (k * k) != 0 || w.rows != x.c {
        return Err(shape_err("conv_transpose2d", format!("weight [{}, {}] does not fit {} input channels and kernel {k}", w.rows, w.cols, x.c)));
    }
    let c_out = w.cols / (k * k);
    let g = Geometry { h_out: x.h * k, w_out: x.w * k, c_out, k, stride: k, pad: 0, m: x.h * x.w, n: w.cols, kk: x.c };
    launch(rec, "conv_transpose2d", true, x, w, g, relu_in, epi)
}

struct Geometry {
    h_out: usize,
    w_out: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    m: usize,
    n: usize,
    kk: usize,
}

#[allow(clippy::too_many_arguments)]
fn launch(rec: &mut Recorder, kernel: &'static str, transposed: bool, x: ImageView, w: &Weight, g: Geometry, relu_in: bool, epi: ConvEpilogue) -> Result<Tensor> {
    let gpu = rec.gpu;
    check_act(kernel, "X", x.t, gpu)?;
    x.check(kernel)?;
    let out_shape = [x.frames, g.h_out, g.w_out, g.c_out];
    let out_n: usize = out_shape.iter().product();
    if let Some(b) = epi.bias {
        if b.numel() != g.c_out || b.dtype != DType::F32 {
            return Err(shape_err(kernel, format!("bias must be {} f32 values, got {:?} {:?}", g.c_out, b.shape, b.dtype)));
        }
    }
    if let Some(p) = epi.pos {
        p.check(kernel, g.h_out, g.w_out, g.c_out)?;
    }
    for (name, t) in [("residual", epi.res_relu), ("add", epi.add)] {
        if let Some(t) = t {
            check_act(kernel, name, t, gpu)?;
            if t.numel() != out_n {
                return Err(shape_err(kernel, format!("{name} operand has shape {:?}, the output is {out_shape:?}", t.shape)));
            }
        }
    }
    let max_dim = gpu.limits.max_compute_workgroups_per_dimension as usize;
    let tile = gpu.gemm_tile();
    let [gx, gy] = tile.groups(g.m, g.n);
    let groups = [gx, gy, x.frames];
    if groups.iter().any(|&v| v > max_dim) || x.t.numel() > u32::MAX as usize || out_n > u32::MAX as usize {
        return Err(shape_err(kernel, format!("{out_shape:?} is too large for one dispatch ({groups:?} workgroups): process fewer frames at once")));
    }
    let y = gpu.alloc_act(&out_shape)?;
    let choice = ConvChoice {
        act: gpu.act,
        transposed,
        format: w.format,
        relu_in,
        bias: epi.bias.is_some(),
        relu: epi.relu,
        pos: epi.pos.is_some(),
        res: epi.res_relu.is_some(),
        add: epi.add.is_some(),
        tile,
    };
    let pipe = choice.launch().pipeline(gpu);
    let p = ConvParams {
        h_in: x.h as u32,
        w_in: x.w as u32,
        c_in: x.c as u32,
        k: g.k as u32,
        h_out: g.h_out as u32,
        w_out: g.w_out as u32,
        c_out: g.c_out as u32,
        stride: g.stride as u32,
        pad: g.pad as u32,
        kp: w.padded_cols() as u32,
        soff: w.scale_offset,
        x_fstride: x.frame_stride as u32,
        x_off: x.off as u32,
        M: g.m as u32,
        N: g.n as u32,
        K: g.kk as u32,
    };
    let mut binds = vec![CONV.bind("X", x.t), CONV.bind_buf("W", &w.buf), CONV.bind("Y", &y)];
    if let Some(b) = epi.bias {
        binds.push(CONV.bind("BIASES", b));
    }
    if let Some(pt) = epi.pos {
        binds.push(CONV.bind("POS", &pt.t));
    }
    if let Some(t) = epi.res_relu {
        binds.push(CONV.bind("REST", t));
    }
    if let Some(t) = epi.add {
        binds.push(CONV.bind("ADDT", t));
    }
    rec.dispatch(pipe, &p, &binds, [groups[0] as u32, groups[1] as u32, groups[2] as u32]);
    Ok(y)
}
