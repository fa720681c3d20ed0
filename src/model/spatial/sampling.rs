//! Space-aware frame sampling (spec section 4): among candidate frames, pick the K that together
//! see the most of the scene. Points with a confidence at or above the median (and above 0.1) are
//! valid; voxel edge = the smallest extent of the valid points' bounding box / 20; each frame covers
//! the voxels its valid points fall in; greedy maximum coverage picks frames (ties to the lowest
//! index, as upstream's loop over a set of small ints does), topped up with uniformly spread picks
//! when no frame adds coverage any more; the result is sorted.

use std::collections::HashSet;

use super::super::vggt::Camera;
use crate::model::{MResult, ModelError};

/// Voxels per smallest extent (λ).
pub const VOXELS_PER_EXTENT: f32 = 20.0;
/// Upstream's second validity test (vacuous for expp1 confidences, kept for other heads).
const MIN_CONF: f32 = 0.1;

/// World points of each candidate frame: `points` [frames, pixels, 3], `conf` [frames, pixels].
pub struct PointMaps<'a> {
    pub points: &'a [f32],
    pub conf: &'a [f32],
    pub frames: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Chosen candidate positions, ascending.
    pub indices: Vec<usize>,
    /// How many were chosen by coverage (the rest are uniform top-ups).
    pub by_coverage: usize,
    /// The voxel edge used.
    pub voxel: f32,
}

/// The 50th percentile with numpy's linear interpolation.
pub fn median(values: &[f32]) -> f64 {
    let mut v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = 0.5 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Which points the selection uses: confidence at or above the median and above 0.1, finite.
pub fn valid_points(maps: &PointMaps) -> MResult<Vec<bool>> {
    let n = maps.frames;
    if n == 0 || maps.conf.is_empty() || maps.conf.len() % n != 0 || maps.points.len() != 3 * maps.conf.len() {
        return Err(ModelError::Input(format!("point maps of {} points and {} confidences for {n} frames", maps.points.len() / 3, maps.conf.len())));
    }
    let thr = median(maps.conf);
    Ok((0..maps.conf.len()).map(|i| maps.conf[i] as f64 >= thr && maps.conf[i] > MIN_CONF && maps.points[3 * i..3 * i + 3].iter().all(|v| v.is_finite())).collect())
}

/// Pick `k` of `maps.frames` candidates.
pub fn select_frames(maps: &PointMaps, k: usize) -> MResult<Selection> {
    let mask = valid_points(maps)?;
    let n = maps.frames;
    let px = maps.conf.len() / n;
    let valid = |i: usize| mask[i];
    let (mut lo, mut hi) = ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]);
    for i in (0..maps.conf.len()).filter(|&i| valid(i)) {
        for a in 0..3 {
            lo[a] = lo[a].min(maps.points[3 * i + a]);
            hi[a] = hi[a].max(maps.points[3 * i + a]);
        }
    }
    // f32 as upstream computes it (torch tensors).
    let voxel = (0..3).map(|a| hi[a] - lo[a]).fold(f32::INFINITY, f32::min) / VOXELS_PER_EXTENT;
    let sets: Vec<HashSet<[i64; 3]>> = if voxel.is_finite() && voxel > 0.0 {
        (0..n)
            .map(|f| {
                (f * px..(f + 1) * px).filter(|&i| valid(i)).map(|i| std::array::from_fn(|a| ((maps.points[3 * i + a] - lo[a]) / voxel).floor() as i64)).collect()
            })
            .collect()
    } else {
        vec![HashSet::new(); n] // a degenerate scene (flat, or no valid point): coverage picks nothing
    };
    let k = k.min(n);
    let mut chosen = greedy_coverage(&sets, k);
    let by_coverage = chosen.len();
    top_up_uniform(&mut chosen, n, k);
    chosen.sort_unstable();
    Ok(Selection { indices: chosen, by_coverage, voxel })
}

/// Greedy maximum coverage: at most `k` frames, stopping when no frame adds a voxel.
pub fn greedy_coverage(sets: &[HashSet<[i64; 3]>], k: usize) -> Vec<usize> {
    let mut covered: HashSet<[i64; 3]> = HashSet::new();
    let mut chosen = Vec::new();
    for _ in 0..k {
        let best = (0..sets.len()).filter(|f| !chosen.contains(f)).map(|f| (f, sets[f].iter().filter(|v| !covered.contains(*v)).count())).fold(
            None,
            |best: Option<(usize, usize)>, (f, g)| match best {
                Some((_, bg)) if g <= bg => best,
                _ => Some((f, g)),
            },
        );
        match best {
            Some((f, gain)) if gain > 0 => {
                covered.extend(sets[f].iter().copied());
                chosen.push(f);
            }
            _ => break,
        }
    }
    chosen
}

/// Add frames spread uniformly over `0..n` (skipping chosen ones) until there are `k`.
pub fn top_up_uniform(chosen: &mut Vec<usize>, n: usize, k: usize) {
    let missing = k.saturating_sub(chosen.len());
    if missing == 0 {
        return;
    }
    let free: Vec<usize> = (0..n).filter(|f| !chosen.contains(f)).collect();
    for j in 0..missing {
        // Centres of `missing` equal slices of the free frames.
        let at = ((2 * j + 1) * free.len()) / (2 * missing);
        chosen.push(free[at.min(free.len() - 1)]);
    }
}

/// The paper's variant: world points from the depth head unprojected with the camera head's
/// cameras (P_cam = D · K⁻¹ [u v 1]ᵀ, then world = Rᵀ (P_cam − t)); `depth` [frames, h, w].
pub fn unproject(depth: &[f32], cameras: &[Camera], h: usize, w: usize) -> MResult<Vec<f32>> {
    if depth.len() != cameras.len() * h * w {
        return Err(ModelError::Input(format!("{} depth values for {} frames of {h}x{w}", depth.len(), cameras.len())));
    }
    let mut out = Vec::with_capacity(depth.len() * 3);
    for (f, cam) in cameras.iter().enumerate() {
        let (k, e) = (&cam.intrinsic, &cam.extrinsic);
        for v in 0..h {
            for u in 0..w {
                let d = depth[(f * h + v) * w + u] as f64;
                let c = [(u as f64 - k[0][2]) * d / k[0][0], (v as f64 - k[1][2]) * d / k[1][1], d];
                let q = [c[0] - e[0][3], c[1] - e[1][3], c[2] - e[2][3]];
                // Rᵀ q: column a of R dotted with q.
                out.extend((0..3).map(|a| (e[0][a] * q[0] + e[1][a] * q[1] + e[2][a] * q[2]) as f32));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_interpolates_like_numpy() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn greedy_prefers_new_coverage_and_lowest_index_on_ties() {
        let s = |v: &[i64]| v.iter().map(|&x| [x, 0, 0]).collect::<HashSet<_>>();
        let sets = vec![s(&[0, 1]), s(&[0, 1]), s(&[2, 3, 4]), s(&[4, 5]), s(&[])];
        // 2 first (3 new), then 0 (2 new; ties with 1 go to 0), then 3 (1 new: voxel 5).
        assert_eq!(greedy_coverage(&sets, 5), vec![2, 0, 3]);
        let mut c = vec![2, 0, 3];
        top_up_uniform(&mut c, 5, 5);
        assert_eq!(c, vec![2, 0, 3, 1, 4]);
    }
}
