//! Embedding lookup from a packed table.

use super::{ACTS, EMBED_WGSL, FLAT_WG};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};
use crate::weights::{Weight, WeightFormat};

crate::uniform_params! {
    pub struct EmbedParams {
        n_tok: u32,
        dim: u32,
        kp: u32,
        soff: u32,
        vocab: u32,
        row0: u32,
    }
}

pub static EMBED: Contract = Contract {
    src: EMBED_WGSL,
    params: EmbedParams::FIELDS,
    slots: &[Slot::read("IDS", "array<u32>"), Slot::read("W", "array<u32>"), Slot::write("Y", "array<Act>")],
    entries: &[Entry::new("embed", [FLAT_WG, 1, 1])],
};

/// What selects an embedding variant: the table's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbedChoice {
    pub act: DType,
    pub format: WeightFormat,
}

impl EmbedChoice {
    pub fn launch(self) -> Launch {
        Launch::new(&EMBED, "embed", Variant::new(self.act).flag(self.format.flag()))
    }
}

/// Every variant `embed` can produce.
pub fn launches() -> Vec<Launch> {
    let formats = [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4];
    ACTS.into_iter().flat_map(|act| formats.map(|format| EmbedChoice { act, format }.launch())).collect()
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
        let launch = EmbedChoice { act: gpu.act, format: table.format }.launch();
        let pipe = launch.pipeline(gpu);
        let p = EmbedParams {
            n_tok: n as u32,
            dim: table.cols as u32,
            kp: table.padded_cols() as u32,
            soff: table.scale_offset,
            vocab: table.rows as u32,
            row0: row0 as u32,
        };
        let work = (n * table.cols.div_ceil(4)) as u32;
        let binds = [EMBED.bind("IDS", ids), EMBED.bind_buf("W", &table.buf), EMBED.bind("Y", &y)];
        rec.dispatch_flat(pipe, &p, &binds, launch.entry().groups(work));
        row0 += table.rows;
    }
    Ok(y)
}
