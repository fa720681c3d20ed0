//! Output activations of a dense prediction head (VGGT `activate_head`): [frames, H, W, C] →
//! values [.., C-1] and confidences, both f32, written into whole-sequence outputs at a frame
//! offset (the heads run in chunks of frames).

use super::{check_act, ACTS, HEAD_ACT_WGSL, FLAT_WG};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

/// Activation of the value channels (head_act.py's `activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueAct {
    Exp,
    InvLog,
    XyInvLog,
    Norm,
    NormExp,
    Relu,
    Sigmoid,
    Linear,
}

/// Activation of the confidence channel (head_act.py's `conf_activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfAct {
    Expp1,
    Expp0,
    Sigmoid,
}

impl ValueAct {
    pub const ALL: [ValueAct; 8] =
        [ValueAct::Exp, ValueAct::InvLog, ValueAct::XyInvLog, ValueAct::Norm, ValueAct::NormExp, ValueAct::Relu, ValueAct::Sigmoid, ValueAct::Linear];
    /// The upstream name ("exp", "inv_log", ...).
    pub fn parse(s: &str) -> Option<ValueAct> {
        Some(match s {
            "exp" => ValueAct::Exp,
            "inv_log" => ValueAct::InvLog,
            "xy_inv_log" => ValueAct::XyInvLog,
            "norm" => ValueAct::Norm,
            "norm_exp" => ValueAct::NormExp,
            "relu" => ValueAct::Relu,
            "sigmoid" => ValueAct::Sigmoid,
            "linear" => ValueAct::Linear,
            _ => return None,
        })
    }
    fn flag(self) -> &'static str {
        match self {
            ValueAct::Exp => "PTS_EXP",
            ValueAct::InvLog => "PTS_INV_LOG",
            ValueAct::XyInvLog => "PTS_XY_INV_LOG",
            ValueAct::Norm => "PTS_NORM",
            ValueAct::NormExp => "PTS_NORM_EXP",
            ValueAct::Relu => "PTS_RELU",
            ValueAct::Sigmoid => "PTS_SIGMOID",
            ValueAct::Linear => "PTS_LINEAR",
        }
    }
}

impl ConfAct {
    pub const ALL: [ConfAct; 3] = [ConfAct::Expp1, ConfAct::Expp0, ConfAct::Sigmoid];
    fn flag(self) -> &'static str {
        match self {
            ConfAct::Expp1 => "CONF_EXPP1",
            ConfAct::Expp0 => "CONF_EXPP0",
            ConfAct::Sigmoid => "CONF_SIGMOID",
        }
    }
}

crate::uniform_params! {
    pub struct HeadActParams {
        pixels: u32,
        c: u32,
        out_off: u32,
    }
}

pub static HEAD_ACT: Contract = Contract {
    src: HEAD_ACT_WGSL,
    params: HeadActParams::FIELDS,
    slots: &[Slot::read("X", "array<Act>"), Slot::write("V", "array<f32>"), Slot::write("CONF", "array<f32>")],
    entries: &[Entry::new("main", [FLAT_WG, 1, 1])],
};

/// What selects a head activation variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadActChoice {
    pub act: DType,
    pub value: ValueAct,
    pub conf: ConfAct,
}

impl HeadActChoice {
    pub fn launch(self) -> Launch {
        Launch::new(&HEAD_ACT, "main", Variant::new(self.act).flag(self.value.flag()).flag(self.conf.flag()))
    }
}

/// Every variant `head_activation` can produce.
pub fn launches() -> Vec<Launch> {
    let mut out = Vec::new();
    for act in ACTS {
        for value in ValueAct::ALL {
            for conf in ConfAct::ALL {
                out.push(HeadActChoice { act, value, conf }.launch());
            }
        }
    }
    out
}

/// Activate `x` [frames, H, W, C] into `values` [S, H, W, C-1] and `conf` [S, H, W] (f32) starting
/// at frame `frame0` of the outputs.
pub fn head_activation(rec: &mut Recorder, x: &Tensor, act: ValueAct, conf_act: ConfAct, values: &Tensor, conf: &Tensor, frame0: usize) -> Result<()> {
    let gpu = rec.gpu;
    check_act("head_act", "X", x, gpu)?;
    let [frames, h, w, c] = x.shape[..] else {
        return Err(shape_err("head_act", format!("input must be [frames, H, W, C], got {:?}", x.shape)));
    };
    if c < 2 || (act == ValueAct::XyInvLog && c != 4) {
        return Err(shape_err("head_act", format!("{c} channels do not hold a value and a confidence for {act:?}")));
    }
    let px = h * w;
    let want_v = [values.shape.first().copied().unwrap_or(0), h, w, c - 1];
    if values.dtype != DType::F32 || conf.dtype != DType::F32 || values.shape[..] != want_v[..] || conf.shape[..] != want_v[..3] || frame0 + frames > want_v[0] {
        return Err(shape_err(
            "head_act",
            format!(
                "outputs must be f32 [S, {h}, {w}, {}] and [S, {h}, {w}] with frames {frame0}..{} inside S; got {:?} {:?} and {:?} {:?}",
                c - 1,
                frame0 + frames,
                values.dtype,
                values.shape,
                conf.dtype,
                conf.shape
            ),
        ));
    }
    let pixels = frames * px;
    let launch = HeadActChoice { act: gpu.act, value: act, conf: conf_act }.launch();
    let p = HeadActParams { pixels: pixels as u32, c: c as u32, out_off: (frame0 * px) as u32 };
    let binds = [HEAD_ACT.bind("X", x), HEAD_ACT.bind("V", values), HEAD_ACT.bind("CONF", conf)];
    rec.dispatch_flat(launch.pipeline(gpu), &p, &binds, launch.entry().groups(pixels as u32));
    Ok(())
}
