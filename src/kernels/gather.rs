//! Row gather of activations, Y[i, :] = X[idx[i], :] (window permutations and their inverse), and
//! column placement (concatenation along channels).

use super::{check_act, ACTS, GATHER_WGSL, FLAT_WG};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

crate::uniform_params! {
    pub struct GatherParams {
        n_rows: u32,
        dim: u32,
        off: u32,
        wide: u32,
        row0: u32,
    }
}

pub static GATHER: Contract = Contract {
    src: GATHER_WGSL,
    params: GatherParams::FIELDS,
    slots: &[Slot::read("X", "array<Act>"), Slot::read("IDX", "array<u32>").only(&["gather"]), Slot::write("Y", "array<Act>")],
    entries: &[Entry::new("gather", [FLAT_WG, 1, 1]), Entry::new("place_cols", [FLAT_WG, 1, 1])],
};

/// A gather launch: `place_cols` when `place`, else `gather`.
pub fn choice(act: DType, place: bool) -> Launch {
    Launch::new(&GATHER, if place { "place_cols" } else { "gather" }, Variant::new(act))
}

/// Every variant the gather launchers can produce.
pub fn launches() -> Vec<Launch> {
    ACTS.into_iter().flat_map(|act| [false, true].map(|place| choice(act, place))).collect()
}

/// `idx` is U32 with every entry below `x.rows()` (checked by the caller that built it).
pub fn gather_rows(rec: &mut Recorder, x: &Tensor, idx: &Tensor) -> Result<Tensor> {
    let y = rec.gpu.alloc_act(&[idx.numel(), x.cols()])?;
    gather_rows_into(rec, x, idx, &y, 0)?;
    Ok(y)
}

/// Y[i, off..off + X.cols] = X[idx[i], :]: gathered rows side by side with others (for example
/// the camera tokens of both halves of a VGGT layer output).
pub fn gather_rows_into(rec: &mut Recorder, x: &Tensor, idx: &Tensor, y: &Tensor, off: usize) -> Result<()> {
    let gpu = rec.gpu;
    check_act("gather", "X", x, gpu)?;
    check_act("gather", "Y", y, gpu)?;
    if idx.dtype != DType::U32 {
        return Err(shape_err("gather", format!("indices must be U32, got {:?}", idx.dtype)));
    }
    let (n, d) = (idx.numel(), x.cols());
    if y.rows() != n || off + d > y.cols() {
        return Err(shape_err("gather", format!("{n} rows of {d} do not fit Y {:?} at column {off}", y.shape)));
    }
    let launch = choice(gpu.act, false);
    let p = GatherParams { n_rows: n as u32, dim: d as u32, off: off as u32, wide: y.cols() as u32, row0: 0 };
    let binds = [GATHER.bind("X", x), GATHER.bind("IDX", idx), GATHER.bind("Y", y)];
    rec.dispatch_flat(launch.pipeline(gpu), &p, &binds, launch.entry().groups((n * d) as u32));
    Ok(())
}

/// Y[r, off..off + X.cols] = X[row0 + r, :] for every row of Y: two calls concatenate two tensors
/// (or the same rows of two tensors) along columns.
pub fn place_cols(rec: &mut Recorder, x: &Tensor, row0: usize, y: &Tensor, off: usize) -> Result<()> {
    let gpu = rec.gpu;
    check_act("place_cols", "X", x, gpu)?;
    check_act("place_cols", "Y", y, gpu)?;
    let (n, d) = (y.rows(), x.cols());
    if row0 + n > x.rows() || off + d > y.cols() {
        return Err(shape_err("place_cols", format!("rows {row0}..{} of X {:?} do not fit Y {:?} at column {off}", row0 + n, x.shape, y.shape)));
    }
    let launch = choice(gpu.act, true);
    let p = GatherParams { n_rows: n as u32, dim: d as u32, off: off as u32, wide: y.cols() as u32, row0: row0 as u32 };
    let binds = [GATHER.bind("X", x), GATHER.bind("Y", y)];
    rec.dispatch_flat(launch.pipeline(gpu), &p, &binds, launch.entry().groups((n * d) as u32));
    Ok(())
}
