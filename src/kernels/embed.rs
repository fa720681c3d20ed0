//! Embedding lookup from a packed table.

use bytemuck::{Pod, Zeroable};

use super::EMBED;
use crate::gpu::{error::shape_err, Binding, DType, PipelineKey, Recorder, Result, Tensor, Variant};
use crate::weights::Weight;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n_tok: u32,
    dim: u32,
    kp: u32,
    soff: u32,
    vocab: u32,
    row0: u32,
    _p: [u32; 2],
}

/// Y[t, :] = table[ids[t], :] for U32 ids. Ids must be below the table's rows (check ids on the
/// CPU when they come from users): the row of an out-of-range id is left unwritten.
pub fn embed(rec: &mut Recorder, ids: &Tensor, table: &Weight) -> Result<Tensor> {
    embed_parts(rec, ids, std::slice::from_ref(table))
}

/// The same over a table split by rows into consecutive parts (as large tables are stored).
pub fn embed_parts(rec: &mut Recorder, ids: &Tensor, parts: &[Weight]) -> Result<Tensor> {
    let gpu = rec.gpu;
    if ids.dtype != DType::U32 {
        return Err(shape_err("embed", format!("ids must be U32, got {:?}", ids.dtype)));
    }
    let Some(first) = parts.first() else {
        return Err(shape_err("embed", "a table of no parts"));
    };
    if parts.iter().any(|p| p.cols != first.cols) {
        return Err(shape_err("embed", "table parts of different widths"));
    }
    let n = ids.numel();
    let y = gpu.alloc_act(&[n, first.cols])?;
    let mut row0 = 0;
    for table in parts {
        let variant = Variant::new(gpu.act).flag(table.format.flag());
        let pipe = gpu.pipeline(PipelineKey { src: &EMBED, entry: "embed", variant: &variant });
        let p = Params {
            n_tok: n as u32,
            dim: table.cols as u32,
            kp: table.padded_cols() as u32,
            soff: table.scale_offset,
            vocab: table.rows as u32,
            row0: row0 as u32,
            _p: [0; 2],
        };
        let work = (n * table.cols.div_ceil(4)) as u32;
        rec.dispatch_flat(pipe, &p, &[Binding::t(1, ids), Binding(2, &table.buf), Binding::t(3, &y)], work.div_ceil(256));
        row0 += table.rows;
    }
    Ok(y)
}
