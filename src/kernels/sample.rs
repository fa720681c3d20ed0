//! Token selection on the GPU: greedy argmax, or temperature / top-k / top-p sampling with a
//! caller-supplied uniform number. The result is a U32 [1] tensor: one id to read back.

use bytemuck::{Pod, Zeroable};

use super::{check_act, PENALTY, SAMPLE};
use crate::gpu::{error::shape_err, Binding, DType, PipelineKey, Recorder, Result, Tensor, Variant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    /// 1.0 disables.
    pub top_p: f32,
    /// 0 disables. Both cuts are probability thresholds: tokens tied with the last one kept are
    /// kept as well.
    pub top_k: u32,
    /// Uniform in [0, 1).
    pub u: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    off: u32,
    top_k: u32,
    _p0: u32,
    temperature: f32,
    top_p: f32,
    u: f32,
    _p1: f32,
}

fn launch(rec: &mut Recorder, logits: &Tensor, row: usize, s: Option<Sampling>) -> Result<Tensor> {
    let gpu = rec.gpu;
    check_act("sample", "logits", logits, gpu)?;
    let n = logits.cols();
    if row >= logits.rows() {
        return Err(shape_err("sample", format!("row {row} of {} rows", logits.rows())));
    }
    if let Some(s) = s {
        #[allow(clippy::neg_cmp_op_on_partial_ord, clippy::nonminimal_bool)] // NaN settings must fail this check
        if !(s.temperature > 0.0) || !(s.top_p > 0.0 && s.top_p <= 1.0) || !(0.0..1.0).contains(&s.u) {
            return Err(shape_err("sample", format!("invalid sampling settings {s:?}")));
        }
    }
    let out = gpu.alloc(&[1], DType::U32)?;
    let variant = Variant::new(gpu.act).flag_if(s.is_some(), "SAMPLE").flag_if(s.is_some(), "REDUCE").constant("RED_N", 256);
    let entry = if s.is_some() { "sample" } else { "argmax" };
    let pipe = gpu.pipeline(PipelineKey { src: &SAMPLE, entry, variant: &variant });
    let s = s.unwrap_or(Sampling { temperature: 1.0, top_p: 1.0, top_k: 0, u: 0.0 });
    let p = Params { n: n as u32, off: (row * n) as u32, top_k: s.top_k, _p0: 0, temperature: s.temperature, top_p: s.top_p, u: s.u, _p1: 0.0 };
    rec.dispatch(pipe, &p, &[Binding::t(1, logits), Binding::t(2, &out)], [1, 1, 1]);
    Ok(out)
}

/// Index of the largest logit of `row` (first on ties).
pub fn argmax(rec: &mut Recorder, logits: &Tensor, row: usize) -> Result<Tensor> {
    launch(rec, logits, row, None)
}

pub fn sample(rec: &mut Recorder, logits: &Tensor, row: usize, s: Sampling) -> Result<Tensor> {
    launch(rec, logits, row, Some(s))
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PenaltyParams {
    n_ids: u32,
    off: u32,
    penalty: f32,
    _p: u32,
}

/// Repetition penalty in place on `row` of `logits` for the token ids in `ids` (U32, unique,
/// each below the row length): negative logits times `penalty`, the others divided by it.
pub fn repetition_penalty(rec: &mut Recorder, logits: &Tensor, row: usize, ids: &Tensor, penalty: f32) -> Result<()> {
    let gpu = rec.gpu;
    check_act("penalty", "logits", logits, gpu)?;
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // a NaN penalty must fail this check
    if ids.dtype != DType::U32 || row >= logits.rows() || !(penalty > 0.0) {
        return Err(shape_err("penalty", format!("ids {:?} {:?}, row {row}, penalty {penalty}", ids.dtype, ids.shape)));
    }
    let n = ids.numel() as u32;
    let pipe = gpu.pipeline(PipelineKey { src: &PENALTY, entry: "penalize", variant: &Variant::new(gpu.act) });
    let p = PenaltyParams { n_ids: n, off: (row * logits.cols()) as u32, penalty, _p: 0 };
    rec.dispatch(pipe, &p, &[Binding::t(1, logits), Binding::t(2, ids)], [n.div_ceil(256).max(1), 1, 1]);
    Ok(())
}
