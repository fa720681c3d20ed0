//! The connectors' regrouping of VGGT patch tokens into merged-token rows (see shaders/regroup.wgsl).

use std::ops::Range;

use super::{check_act, ACTS, REGROUP_WGSL, FLAT_WG};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

/// The feature order of a checkpoint generation's connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegroupOrder {
    /// v1.0 `VGGTEmbeddingMerger`: (frame in pair, row in block, col in block, channel).
    V10,
    /// v1.1 `MLPAddConnector`: (row in block, col in block, channel, frame in pair).
    V11,
}

crate::uniform_params! {
    pub struct RegroupParams {
        n_rows: u32,
        c: u32,
        p: u32,
        patch_start: u32,
        grid_h: u32,
        grid_w: u32,
        order: u32,
        r0: u32,
    }
}

pub static REGROUP: Contract = Contract {
    src: REGROUP_WGSL,
    params: RegroupParams::FIELDS,
    slots: &[Slot::read("A", "array<Act>"), Slot::read("B", "array<Act>"), Slot::write("Y", "array<Act>")],
    entries: &[Entry::new("regroup", [FLAT_WG, 1, 1])],
};

/// The regroup launch (one variant per activation type).
pub fn choice(act: DType) -> Launch {
    Launch::new(&REGROUP, "regroup", Variant::new(act))
}

/// Every variant `regroup` can produce.
pub fn launches() -> Vec<Launch> {
    ACTS.map(choice).to_vec()
}

/// `halves` are the two halves of the C channels (A = 0 .. C/2, B = C/2 .. C), each
/// [frames * tokens, C/2] (tokens per frame = patch_start + grid_h * grid_w); returns rows `rows`
/// of the [frames/2 * grid_h/2 * grid_w/2, 8 * C] regrouping, in the merged tokens' (t, I, J)
/// raster order.
pub fn regroup(
    rec: &mut Recorder,
    halves: [&Tensor; 2],
    frames: usize,
    patch_start: usize,
    grid: (usize, usize),
    order: RegroupOrder,
    rows: Range<usize>,
) -> Result<Tensor> {
    let gpu = rec.gpu;
    let [a, b] = halves;
    check_act("regroup", "A", a, gpu)?;
    check_act("regroup", "B", b, gpu)?;
    let (gh, gw) = grid;
    let p = patch_start + gh * gw;
    if frames == 0 || frames % 2 != 0 || gh % 2 != 0 || gw % 2 != 0 {
        return Err(shape_err("regroup", format!("{frames} frames of {gh}x{gw} patches: the merge needs even counts")));
    }
    if a.rows() != frames * p || a.shape != b.shape {
        return Err(shape_err("regroup", format!("halves {:?} and {:?}: {frames} frames of {p} tokens have {} rows in each", a.shape, b.shape, frames * p)));
    }
    let c = 2 * a.cols();
    let total = frames / 2 * (gh / 2) * (gw / 2);
    if rows.start >= rows.end || rows.end > total {
        return Err(shape_err("regroup", format!("rows {rows:?} of {total} merged tokens")));
    }
    let n = rows.len();
    let y = gpu.alloc_act(&[n, 8 * c])?;
    let launch = choice(gpu.act);
    let prm = RegroupParams {
        n_rows: n as u32,
        c: c as u32,
        p: p as u32,
        patch_start: patch_start as u32,
        grid_h: gh as u32,
        grid_w: gw as u32,
        order: (order == RegroupOrder::V11) as u32,
        r0: rows.start as u32,
    };
    let binds = [REGROUP.bind("A", a), REGROUP.bind("B", b), REGROUP.bind("Y", &y)];
    rec.dispatch_flat(launch.pipeline(gpu), &prm, &binds, launch.entry().groups((n * 8 * c) as u32));
    Ok(y)
}
