//! Where each ViT patch goes (spec 6.1), computed on the CPU: the window permutation of merged
//! tokens with its block-diagonal segments, full-attention segments per temporal group, and each
//! patch's (row, col) for the 2D RoPE. Patches arrive in the processor's order: per temporal
//! group, 2x2 merge blocks row-major, the four patches of a block row-major.

/// A grid in patches: temporal groups, rows, columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub t: usize,
    pub h: usize,
    pub w: usize,
}

pub struct VisionLayout {
    /// Merged-token order the blocks run in: `window[j]` is the processor-order merged token at j.
    pub window: Vec<usize>,
    /// Window segments in patch tokens, cumulative from 0 (empty windows dropped).
    pub cu_window: Vec<u32>,
    /// One segment per temporal group of each grid (the full-attention blocks).
    pub cu_full: Vec<u32>,
    /// (row, col) of each patch, in window order.
    pub positions: Vec<[i32; 2]>,
}

impl VisionLayout {
    /// `window_merged`: window side in merged tokens (112 px / 14 / 2 = 4).
    pub fn new(grids: &[Grid], merge: usize, window_merged: usize) -> VisionLayout {
        let unit = merge * merge;
        let (mut window, mut cu_window, mut cu_full) = (Vec::new(), vec![0u32], vec![0u32]);
        let mut offset = 0;
        for g in grids {
            let (lh, lw) = (g.h / merge, g.w / merge);
            let (nwh, nww) = (lh.div_ceil(window_merged), lw.div_ceil(window_merged));
            for t in 0..g.t {
                for wy in 0..nwh {
                    for wx in 0..nww {
                        let mut count = 0;
                        for r in wy * window_merged..((wy + 1) * window_merged).min(lh) {
                            for c in wx * window_merged..((wx + 1) * window_merged).min(lw) {
                                window.push(offset + t * lh * lw + r * lw + c);
                                count += 1;
                            }
                        }
                        if count > 0 {
                            cu_window.push(cu_window.last().unwrap() + (count * unit) as u32);
                        }
                    }
                }
                cu_full.push(cu_full.last().unwrap() + (g.h * g.w) as u32);
            }
            offset += g.t * lh * lw;
        }
        // Patch positions of every merged token in processor order, then in window order.
        let mut merged_pos: Vec<[[i32; 2]; 4]> = Vec::with_capacity(offset);
        for g in grids {
            for _ in 0..g.t {
                for bh in 0..g.h / merge {
                    for bw in 0..g.w / merge {
                        let mut p = [[0; 2]; 4];
                        for i in 0..merge {
                            for j in 0..merge {
                                p[i * merge + j] = [(bh * merge + i) as i32, (bw * merge + j) as i32];
                            }
                        }
                        merged_pos.push(p);
                    }
                }
            }
        }
        let positions = window.iter().flat_map(|&k| merged_pos[k][..unit].to_vec()).collect();
        VisionLayout { window, cu_window, cu_full, positions }
    }

    /// The inverse permutation: processor-order merged token k sits at `inverse()[k]`.
    pub fn inverse(&self) -> Vec<u32> {
        let mut inv = vec![0u32; self.window.len()];
        for (j, &k) in self.window.iter().enumerate() {
            inv[k] = j as u32;
        }
        inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// The spec's example: a 17 x 23 merged grid gives 5 x 6 = 30 windows of 64, 48 (right
    /// column), 16 (bottom row) and 12 (corner) patch tokens.
    #[test]
    fn windows_of_the_spec_example() {
        let l = VisionLayout::new(&[Grid { t: 1, h: 34, w: 46 }], 2, 4);
        let sizes: Vec<u32> = l.cu_window.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(sizes.len(), 30);
        assert_eq!((sizes[0], sizes[5], sizes[24], sizes[29]), (64, 48, 16, 12));
        assert_eq!(l.cu_full, vec![0, 34 * 46]);
        let mut sorted = l.window.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..17 * 23).collect::<Vec<_>>());
    }
}
