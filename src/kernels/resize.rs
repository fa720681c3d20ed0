//! Bilinear resize of channels-last images [frames, H, W, C] with align_corners=True (PyTorch's
//! F.interpolate semantics, any input and output size), with an optional fused positional table
//! and addend.

use super::conv::SeparablePos;
use super::{check_act, ACTS, RESIZE_WGSL, FLAT_WG};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

crate::uniform_params! {
    pub struct ResizeParams {
        frames: u32,
        h_in: u32,
        w_in: u32,
        c: u32,
        h_out: u32,
        w_out: u32,
        sy: f32,
        sx: f32,
    }
}

pub static RESIZE: Contract = Contract {
    src: RESIZE_WGSL,
    params: ResizeParams::FIELDS,
    slots: &[
        Slot::read("X", "array<Act>"),
        Slot::write("Y", "array<Act>"),
        Slot::read("POS", "array<f32>").when("POS"),
        Slot::read("ADDT", "array<Act>").when("ADD"),
    ],
    entries: &[Entry::new("main", [FLAT_WG, 1, 1])],
};

/// What selects a resize variant: the fused positional table and addend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizeChoice {
    pub act: DType,
    pub pos: bool,
    pub add: bool,
}

impl ResizeChoice {
    pub fn launch(self) -> Launch {
        Launch::new(&RESIZE, "main", Variant::new(self.act).flag_if(self.pos, "POS").flag_if(self.add, "ADD"))
    }
}

/// Every variant `bilinear` can produce.
pub fn launches() -> Vec<Launch> {
    ACTS.into_iter().flat_map(|act| (0..4).map(move |b| ResizeChoice { act, pos: b & 1 != 0, add: b & 2 != 0 }.launch())).collect()
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
    let launch = ResizeChoice { act: gpu.act, pos: pos.is_some(), add: add.is_some() }.launch();
    let p = ResizeParams {
        frames: frames as u32,
        h_in: h as u32,
        w_in: w as u32,
        c: c as u32,
        h_out: h_out as u32,
        w_out: w_out as u32,
        sy: scale(h, h_out),
        sx: scale(w, w_out),
    };
    let mut binds = vec![RESIZE.bind("X", x), RESIZE.bind("Y", &y)];
    if let Some(pt) = pos {
        binds.push(RESIZE.bind("POS", &pt.t));
    }
    if let Some(a) = add {
        binds.push(RESIZE.bind("ADDT", a));
    }
    rec.dispatch_flat(launch.pipeline(gpu), &p, &binds, launch.entry().groups(n as u32));
    Ok(y)
}
