//! Bilinear resize of channels-last images [frames, H, W, C] with align_corners=True (PyTorch's
//! F.interpolate semantics, any input and output size), with an optional fused positional table
//! and addend.

use bytemuck::{Pod, Zeroable};

use super::conv::SeparablePos;
use super::{check_act, FLAT_WG, RESIZE};
use crate::gpu::{error::shape_err, Binding, PipelineKey, Recorder, Result, Tensor, Variant};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    frames: u32,
    h_in: u32,
    w_in: u32,
    c: u32,
    h_out: u32,
    w_out: u32,
    sy: f32,
    sx: f32,
}

/// The source-coordinate step of align_corners=True: (in - 1) / (out - 1), 0 for one output.
fn scale(n_in: usize, n_out: usize) -> f32 {
    if n_out > 1 {
        (n_in - 1) as f32 / (n_out - 1) as f32
    } else {
        0.0
    }
}

/// Y = bilinear(X) to [frames, h_out, w_out, C] (+ pos) (+ add).
pub fn bilinear(rec: &mut Recorder, x: &Tensor, h_out: usize, w_out: usize, pos: Option<&SeparablePos>, add: Option<&Tensor>) -> Result<Tensor> {
    let gpu = rec.gpu;
    check_act("bilinear", "X", x, gpu)?;
    let [frames, h, w, c] = x.shape[..] else {
        return Err(shape_err("bilinear", format!("input must be [frames, H, W, C], got {:?}", x.shape)));
    };
    if x.numel() == 0 || h_out == 0 || w_out == 0 {
        return Err(shape_err("bilinear", format!("empty input {:?} or output {h_out}x{w_out}", x.shape)));
    }
    let out_shape = [frames, h_out, w_out, c];
    let n: usize = out_shape.iter().product();
    if n > u32::MAX as usize {
        return Err(shape_err("bilinear", format!("output {out_shape:?} is too large for one dispatch")));
    }
    if let Some(p) = pos {
        p.check("bilinear", h_out, w_out, c)?;
    }
    if let Some(a) = add {
        check_act("bilinear", "add", a, gpu)?;
        if a.numel() != n {
            return Err(shape_err("bilinear", format!("add operand has shape {:?}, the output is {out_shape:?}", a.shape)));
        }
    }
    let y = gpu.alloc_act(&out_shape)?;
    let variant = Variant::new(gpu.act).flag_if(pos.is_some(), "POS").flag_if(add.is_some(), "ADD");
    let pipe = gpu.pipeline(PipelineKey { src: &RESIZE, entry: "main", variant: &variant });
    let p = Params {
        frames: frames as u32,
        h_in: h as u32,
        w_in: w as u32,
        c: c as u32,
        h_out: h_out as u32,
        w_out: w_out as u32,
        sy: scale(h, h_out),
        sx: scale(w, w_out),
    };
    let mut binds = vec![Binding::t(1, x), Binding::t(2, &y)];
    if let Some(pt) = pos {
        binds.push(Binding::t(3, &pt.t));
    }
    if let Some(a) = add {
        binds.push(Binding::t(4, a));
    }
    rec.dispatch_flat(pipe, &p, &binds, (n as u32).div_ceil(FLAT_WG));
    Ok(y)
}
