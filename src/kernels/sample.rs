//! Token selection on the GPU: greedy argmax, or temperature / top-k / top-p sampling with a
//! caller-supplied uniform number. The result is a U32 [1] tensor: one id to read back.

use super::{check_act, ACTS, FLAT_WG, PENALTY_WGSL, SAMPLE_WGSL};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

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

crate::uniform_params! {
    pub struct SampleParams {
        n: u32,
        off: u32,
        top_k: u32,
        temperature: f32,
        top_p: f32,
        u: f32,
    }
}

pub static SAMPLE: Contract = Contract {
    src: SAMPLE_WGSL,
    params: SampleParams::FIELDS,
    slots: &[Slot::read("L", "array<Act>"), Slot::write("OUT", "array<u32>")],
    entries: &[Entry::new("argmax", [256, 1, 1]), Entry::new("sample", [256, 1, 1])],
};

/// The selection launch: `sample` (temperature, top-k, top-p) when `sample`, else `argmax`.
pub fn choice(act: DType, sample: bool) -> Launch {
    let entry = if sample { "sample" } else { "argmax" };
    let variant = Variant::new(act).flag_if(sample, "SAMPLE").flag_if(sample, "REDUCE").constant("RED_N", SAMPLE.entry(entry).threads());
    Launch::new(&SAMPLE, entry, variant)
}

/// Every variant the selection and penalty launchers can produce.
pub fn launches() -> Vec<Launch> {
    ACTS.into_iter().flat_map(|act| [choice(act, false), choice(act, true), penalty_choice(act)]).collect()
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
    let launch = choice(gpu.act, s.is_some());
    let s = s.unwrap_or(Sampling { temperature: 1.0, top_p: 1.0, top_k: 0, u: 0.0 });
    let p = SampleParams { n: n as u32, off: (row * n) as u32, top_k: s.top_k, temperature: s.temperature, top_p: s.top_p, u: s.u };
    rec.dispatch(launch.pipeline(gpu), &p, &[SAMPLE.bind("L", logits), SAMPLE.bind("OUT", &out)], [1, 1, 1]);
    Ok(out)
}

/// Index of the largest logit of `row` (first on ties).
pub fn argmax(rec: &mut Recorder, logits: &Tensor, row: usize) -> Result<Tensor> {
    launch(rec, logits, row, None)
}

pub fn sample(rec: &mut Recorder, logits: &Tensor, row: usize, s: Sampling) -> Result<Tensor> {
    launch(rec, logits, row, Some(s))
}

crate::uniform_params! {
    pub struct PenaltyParams {
        n_ids: u32,
        off: u32,
        penalty: f32,
    }
}

pub static PENALTY: Contract = Contract {
    src: PENALTY_WGSL,
    params: PenaltyParams::FIELDS,
    slots: &[Slot::write("L", "array<Act>"), Slot::read("IDS", "array<u32>")],
    entries: &[Entry::new("penalize", [FLAT_WG, 1, 1])],
};

/// The penalty launch (one variant per activation type).
pub fn penalty_choice(act: DType) -> Launch {
    Launch::new(&PENALTY, "penalize", Variant::new(act))
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
    let launch = penalty_choice(gpu.act);
    let p = PenaltyParams { n_ids: n, off: (row * logits.cols()) as u32, penalty };
    let binds = [PENALTY.bind("L", logits), PENALTY.bind("IDS", ids)];
    rec.dispatch(launch.pipeline(gpu), &p, &binds, [launch.entry().groups(n).max(1), 1, 1]);
    Ok(())
}
