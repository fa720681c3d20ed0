//! Row gather of activations: Y[i, :] = X[idx[i], :] (window permutations and their inverse).

use bytemuck::{Pod, Zeroable};

use super::{check_act, GATHER};
use crate::gpu::{error::shape_err, Binding, DType, PipelineKey, Recorder, Result, Tensor, Variant};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n_rows: u32,
    dim: u32,
    off: u32,
    wide: u32,
}

/// `idx` is U32 with every entry below `x.rows()` (checked by the caller that built it).
pub fn gather_rows(rec: &mut Recorder, x: &Tensor, idx: &Tensor) -> Result<Tensor> {
    let gpu = rec.gpu;
    check_act("gather", "X", x, gpu)?;
    if idx.dtype != DType::U32 {
        return Err(shape_err("gather", format!("indices must be U32, got {:?}", idx.dtype)));
    }
    let (n, d) = (idx.numel(), x.cols());
    let y = gpu.alloc_act(&[n, d])?;
    let pipe = gpu.pipeline(PipelineKey { src: &GATHER, entry: "gather", variant: &Variant::new(gpu.act) });
    let p = Params { n_rows: n as u32, dim: d as u32, off: 0, wide: d as u32 };
    rec.dispatch_flat(pipe, &p, &[Binding::t(1, x), Binding::t(2, idx), Binding::t(3, &y)], ((n * d) as u32).div_ceil(256));
    Ok(y)
}

/// Y[r, off..off + X.cols] = X[r, :] for every row: two calls concatenate two tensors along columns.
pub fn place_cols(rec: &mut Recorder, x: &Tensor, y: &Tensor, off: usize) -> Result<()> {
    let gpu = rec.gpu;
    check_act("place_cols", "X", x, gpu)?;
    check_act("place_cols", "Y", y, gpu)?;
    let (n, d) = (x.rows(), x.cols());
    if y.rows() != n || off + d > y.cols() {
        return Err(shape_err("place_cols", format!("X {:?} does not fit Y {:?} at column {off}", x.shape, y.shape)));
    }
    let pipe = gpu.pipeline(PipelineKey { src: &GATHER, entry: "place_cols", variant: &Variant::new(gpu.act) });
    let p = Params { n_rows: n as u32, dim: d as u32, off: off as u32, wide: y.cols() as u32 };
    rec.dispatch_flat(pipe, &p, &[Binding::t(1, x), Binding::t(3, y)], ((n * d) as u32).div_ceil(256));
    Ok(())
}
