//! M-RoPE position ids, exactly as transformers' `get_rope_index` computes them (spec 6.3):
//! text tokens count up on all three components; a vision block of grid (t, h, w) merged tokens
//! starting after position n gets (n + floor(t_i * second_per_grid_t * tokens_per_second),
//! n + row, n + col); text after it resumes at the block's largest position + 1. The rope delta
//! (largest position + 1 - sequence length) places decoded tokens.

use super::SpecialTokens;
use crate::model::{MResult, ModelError};

/// One image or video in prompt order: grid in patches (t, h, w) and seconds per temporal
/// patch (0 for images).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VisionGrid {
    pub t: usize,
    pub h: usize,
    pub w: usize,
    pub second_per_grid_t: f32,
}

/// Positions [seq][t, h, w] and the rope delta.
pub fn rope_index(ids: &[u32], grids: &[VisionGrid], tokens: &SpecialTokens, merge: usize, tokens_per_second: f32) -> MResult<(Vec<[i32; 3]>, i64)> {
    let mut pos: Vec<[i32; 3]> = Vec::with_capacity(ids.len());
    let mut next = 0i32; // first position of the next text run
    let mut i = 0;
    let mut g = 0;
    while i < ids.len() {
        let id = ids[i];
        if id != tokens.image_pad && id != tokens.video_pad {
            pos.push([next; 3]);
            next += 1;
            i += 1;
            continue;
        }
        let grid = grids.get(g).ok_or_else(|| ModelError::Input("more vision blocks in the prompt than images and videos given".into()))?;
        g += 1;
        let (lt, lh, lw) = (grid.t, grid.h / merge, grid.w / merge);
        let n = lt * lh * lw;
        if i + n > ids.len() || ids[i..i + n].iter().any(|&x| x != id) {
            return Err(ModelError::Input(format!("a vision block needs {n} consecutive pad tokens at {i}")));
        }
        let mut top = next;
        for ti in 0..lt {
            // f32 like PyTorch: (t * second_per_grid_t) * tokens_per_second, truncated.
            let tp = ((ti as f32 * grid.second_per_grid_t) * tokens_per_second) as i32;
            for r in 0..lh {
                for c in 0..lw {
                    let p = [next + tp, next + r as i32, next + c as i32];
                    top = top.max(p[0]).max(p[1]).max(p[2]);
                    pos.push(p);
                }
            }
        }
        next = top + 1;
        i += n;
    }
    if g != grids.len() {
        return Err(ModelError::Input(format!("{} images/videos given, {g} vision blocks in the prompt", grids.len())));
    }
    let delta = next as i64 - ids.len() as i64;
    Ok((pos, delta))
}

/// Position of a decoded token at cache index `c`: c + delta on all three components.
pub fn decode_position(c: usize, delta: i64) -> [i32; 3] {
    [(c as i64 + delta) as i32; 3]
}

#[cfg(test)]
mod tests {
    use super::*;
    fn toks() -> SpecialTokens {
        SpecialTokens { vision_start: 10, vision_end: 11, image_pad: 12, video_pad: 13, eos: vec![1] }
    }
    /// The spec's example: 16 frames at 17 x 23 merged tokens, second_per_grid_t 1: the video
    /// spans t in n+{0,2,..,14}, h in n+{0..16}, w in n+{0..22}; text resumes at n+23.
    #[test]
    fn video_positions_follow_the_spec_example() {
        let n = 5;
        let mut ids = vec![0u32; n];
        let grid = VisionGrid { t: 8, h: 34, w: 46, second_per_grid_t: 1.0 };
        ids.extend(std::iter::repeat_n(13, 8 * 17 * 23));
        ids.extend([11, 0]);
        let (pos, delta) = rope_index(&ids, &[grid], &toks(), 2, 2.0).unwrap();
        let video = &pos[n..n + 8 * 17 * 23];
        assert_eq!(video.iter().map(|p| p[0]).max(), Some(n as i32 + 14));
        assert_eq!(video.iter().map(|p| p[1]).max(), Some(n as i32 + 16));
        assert_eq!(video.iter().map(|p| p[2]).max(), Some(n as i32 + 22));
        assert_eq!(pos[n + 8 * 17 * 23], [n as i32 + 23; 3]);
        assert_eq!(delta, (n + 23 + 2) as i64 - ids.len() as i64);
    }
    #[test]
    fn mismatched_blocks_are_errors() {
        let ids = vec![0, 12, 12, 0];
        let grid = VisionGrid { t: 1, h: 4, w: 4, second_per_grid_t: 0.0 };
        assert!(rope_index(&ids, &[grid], &toks(), 2, 2.0).is_err());
        assert!(rope_index(&[0, 1], &[grid], &toks(), 2, 2.0).is_err());
    }
}
