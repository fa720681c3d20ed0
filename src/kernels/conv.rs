//! Convolutions of channels-last images (the DPT heads): `conv2d` (any odd kernel, stride,
//! padding (k-1)/2) and `conv_transpose2d` with kernel == stride. An image batch is a tensor of
//! shape [frames, H, W, C] (row-major, a pixel's channels contiguous), or an `ImageView` into a
//! wider tensor (patch tokens after special tokens). Weights are read in the package's packed
//! form: the [out, in*k*k] matrix of a conv weight, the [in, out*k*k] matrix of a transposed
//! one, dequantised in the kernel. The layouts and the fused epilogue are documented in
//! shaders/conv.wgsl; the GEMM is the core shared with matmul, at the device's `Gpu::gemm_tile`.

use bytemuck::{Pod, Zeroable};

use super::{check_act, CONV};
use crate::gpu::{error::shape_err, Binding, DType, Gpu, PipelineKey, Recorder, Result, Tensor, Variant};
use crate::weights::Weight;

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

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
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
    m: u32,
    n: u32,
    kk: u32,
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
    launch(rec, "conv2d", "CONV", x, w, g, relu_in, epi)
}

/// Transposed convolution with kernel == stride == k: [frames, h, w, c_in] → [frames, h*k, w*k,
/// c_out]. `w` is the [c_in, c_out * k * k] matrix.
pub fn conv_transpose2d(rec: &mut Recorder, x: ImageView, w: &Weight, k: usize, relu_in: bool, epi: ConvEpilogue) -> Result<Tensor> {
    if k == 0 || w.cols % (k * k) != 0 || w.rows != x.c {
        return Err(shape_err("conv_transpose2d", format!("weight [{}, {}] does not fit {} input channels and kernel {k}", w.rows, w.cols, x.c)));
    }
    let c_out = w.cols / (k * k);
    let g = Geometry { h_out: x.h * k, w_out: x.w * k, c_out, k, stride: k, pad: 0, m: x.h * x.w, n: w.cols, kk: x.c };
    launch(rec, "conv_transpose2d", "CONVT", x, w, g, relu_in, epi)
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
fn launch(rec: &mut Recorder, kernel: &'static str, flag: &'static str, x: ImageView, w: &Weight, g: Geometry, relu_in: bool, epi: ConvEpilogue) -> Result<Tensor> {
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
    let variant = Variant::new(gpu.act)
        .flag("GEMM")
        .flag(flag)
        .flag_if(flag == "CONVT", "B_KN")
        .flag(w.format.flag())
        .flag_if(relu_in, "RELU_IN")
        .flag_if(epi.bias.is_some(), "BIAS")
        .flag_if(epi.relu, "RELU")
        .flag_if(epi.pos.is_some(), "POS")
        .flag_if(epi.res_relu.is_some(), "RES")
        .flag_if(epi.add.is_some(), "ADD");
    let variant = tile.apply(variant);
    let pipe = gpu.pipeline(PipelineKey { src: &CONV, entry: "gemm", variant: &variant });
    let p = Params {
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
        m: g.m as u32,
        n: g.n as u32,
        kk: g.kk as u32,
    };
    let mut binds = vec![Binding::t(1, x.t), Binding(2, &w.buf), Binding::t(3, &y)];
    if let Some(b) = epi.bias {
        binds.push(Binding::t(4, b));
    }
    if let Some(pt) = epi.pos {
        binds.push(Binding::t(5, &pt.t));
    }
    if let Some(t) = epi.res_relu {
        binds.push(Binding::t(6, t));
    }
    if let Some(t) = epi.add {
        binds.push(Binding::t(7, t));
    }
    rec.dispatch(pipe, &p, &binds, [groups[0] as u32, groups[1] as u32, groups[2] as u32]);
    Ok(y)
}
