//! Streaming copy of 32-bit words (`shaders/copy.wgsl`): vec4<u32> loads and stores in a
//! grid-stride loop whose grid size (workgroups) and loads in flight per thread (`COPY_ITEMS`, a
//! variant constant) are the launch's choice. The engine copies with `copy_buffer_to_buffer`;
//! this kernel is what `bench`'s bandwidth probe times to find the device's copy floor (the best
//! of several grids and item counts, and of `copy_buffer_to_buffer`).

use super::{ACTS, COPY_WGSL};
use crate::gpu::{error::shape_err, Contract, DType, Entry, Launch, Recorder, Result, Slot, Tensor, UniformParams, Variant};

crate::uniform_params! {
    pub struct CopyParams {
        n4: u32,
        threads: u32,
    }
}

/// Threads per workgroup.
pub const COPY_WG: u32 = 256;

/// The loads in flight per thread the launchers accept (`COPY_ITEMS`).
pub const ITEMS: [u32; 4] = [1, 2, 4, 8];

pub static COPY: Contract = Contract {
    src: COPY_WGSL,
    params: CopyParams::FIELDS,
    slots: &[Slot::read("X", "array<vec4<u32>>"), Slot::write("Y", "array<vec4<u32>>")],
    entries: &[Entry::new("copy", [COPY_WG, 1, 1])],
};

/// A copy launch's grid: `groups` workgroups (0: as many as cover the buffer in one pass, capped
/// at the per-dimension limit), each thread `items` vec4 loads in flight per pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyGrid {
    pub groups: u32,
    pub items: u32,
}

impl CopyGrid {
    /// One pass over the buffer where the limit allows, four loads in flight per thread.
    pub const AUTO: CopyGrid = CopyGrid { groups: 0, items: 4 };
}

/// The copy launch with `items` loads in flight per thread (`act` only names the variant's
/// activation alias, which the kernel does not use: launchers pass the device's).
pub fn choice(act: DType, items: u32) -> Launch {
    assert!(ITEMS.contains(&items), "copy: {items} items per thread is not one of {ITEMS:?}");
    Launch::new(&COPY, "copy", Variant::new(act).constant("COPY_ITEMS", items))
}

/// Every variant the copy launcher can produce.
pub fn launches() -> Vec<Launch> {
    ACTS.into_iter().flat_map(|act| ITEMS.map(|items| choice(act, items))).collect()
}

/// The workgroups a launch of `grid` over `n4` vec4s dispatches.
pub fn groups(grid: CopyGrid, n4: u64, max_per_dim: u32) -> u32 {
    let cover = n4.div_ceil(u64::from(COPY_WG * grid.items)).max(1);
    let want = if grid.groups == 0 { cover } else { u64::from(grid.groups).min(cover) };
    want.min(u64::from(max_per_dim)) as u32
}

/// Copy the first `words` 32-bit words of `x` into the first `words` of `y` (any 4-byte types):
/// the whole vec4s with the kernel on `grid`, the last 0 to 3 words with a buffer copy.
pub fn copy_words(rec: &mut Recorder, x: &Tensor, y: &Tensor, words: usize, grid: CopyGrid) -> Result<()> {
    for (what, t) in [("X", x), ("Y", y)] {
        if t.dtype.size() != 4 || t.numel() < words {
            return Err(shape_err("copy", format!("{what} {:?} {:?} does not hold {words} 32-bit words", t.dtype, t.shape)));
        }
    }
    if grid.items == 0 || !ITEMS.contains(&grid.items) {
        return Err(shape_err("copy", format!("{} items per thread is not one of {ITEMS:?}", grid.items)));
    }
    let n4 = words / 4;
    if n4 > u32::MAX as usize / 2 {
        return Err(shape_err("copy", format!("{words} words is too many for one launch")));
    }
    if n4 > 0 {
        let gpu = rec.gpu;
        let launch = choice(gpu.act, grid.items);
        let g = groups(grid, n4 as u64, gpu.limits.max_compute_workgroups_per_dimension);
        let p = CopyParams { n4: n4 as u32, threads: g * COPY_WG };
        let binds = [COPY.bind("X", x), COPY.bind("Y", y)];
        rec.dispatch(launch.pipeline(gpu), &p, &binds, [g, 1, 1]);
    }
    let tail = (words % 4) as u64 * 4;
    if tail > 0 {
        let at = (n4 * 16) as u64;
        rec.copy(x, at, y, at, tail);
    }
    Ok(())
}
