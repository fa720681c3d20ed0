//! Space-aware frame sampling from a decoded video (spec 4.1): candidate frames spread over the
//! video, VGGT's "crop" preprocessing (portrait frames turned a quarter, width resized to the
//! sampler's width with Pillow's bicubic, height to a multiple of 14, centre-cropped to a square
//! at most), VGGT's point cloud, then the coverage selection. Two presets: the full mode of the
//! released code (128 candidates, 518 px) and a fast mode for browsers (32 candidates, 224 px).

use super::sampling::{select_frames, PointMaps};
use crate::gpu::Gpu;
use crate::model::vggt::{Frames, GeometrySource, Vggt};
use crate::model::{MResult, ModelError};
use crate::preprocess::{linspace_trunc, resize_pil_bicubic, PilPassOrder, RgbFrames};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Candidate frames (at most the video's frame count).
    pub candidates: usize,
    /// VGGT input width in pixels (a multiple of 14).
    pub width: usize,
    /// Frames to select.
    pub k: usize,
    pub source: GeometrySource,
}

impl SamplerConfig {
    /// The released sampler: 128 candidates at 518 px, the point head, 16 frames.
    pub fn full() -> SamplerConfig {
        SamplerConfig { candidates: 128, width: 518, k: 16, source: GeometrySource::PointHead }
    }

    /// For browsers: 32 candidates at 224 px (for a 4:3 video 32 x 197 = 6 304 VGGT tokens instead
    /// of 128 x 1 041 = 133 248: about 1/21 of the linear-layer work and 1/450 of the global
    /// attention's).
    pub fn fast() -> SamplerConfig {
        SamplerConfig { candidates: 32, width: 224, k: 16, source: GeometrySource::PointHead }
    }
}

/// Which frames of the video to decode as candidates (`np.linspace(0, total-1, n, dtype=int)`).
pub fn candidate_indices(total: usize, cfg: &SamplerConfig) -> MResult<Vec<usize>> {
    if total == 0 {
        return Err(ModelError::Input("the video has no frames".into()));
    }
    if cfg.candidates == 0 || cfg.k == 0 {
        return Err(ModelError::Input("frame sampling needs at least one candidate and one frame to pick".into()));
    }
    Ok(linspace_trunc(total, total.min(cfg.candidates)))
}

/// VGGT's "crop" preprocessing of the candidate frames: [count, 3, h, w] in [0, 1].
pub fn vggt_frames(frames: &RgbFrames, width: usize) -> MResult<(Vec<f32>, usize, usize)> {
    if width == 0 || width % 14 != 0 {
        return Err(ModelError::Input(format!("a sampler width of {width} px: use a multiple of 14")));
    }
    let bad = |e: crate::preprocess::PreprocessError| ModelError::Input(e.to_string());
    // Portrait frames are turned (upstream rotates by -90 degrees with expand).
    let turned;
    let src = if frames.height > frames.width {
        turned = rotate_clockwise(frames);
        &turned
    } else {
        frames
    };
    let h = ((src.height as f64 * width as f64 / src.width as f64 / 14.0).round() as usize * 14).max(14);
    let resized = resize_pil_bicubic(src, h, width, PilPassOrder::default()).map_err(bad)?;
    let (top, out_h) = if h > width { ((h - width) / 2, width) } else { (0, h) };
    let mut out = Vec::with_capacity(frames.count * 3 * out_h * width);
    for f in 0..resized.count {
        let px = resized.frame(f);
        for c in 0..3 {
            for y in top..top + out_h {
                out.extend((0..width).map(|x| px[(y * width + x) * 3 + c] as f32 / 255.0));
            }
        }
    }
    Ok((out, out_h, width))
}

/// PIL's `rotate(-90, expand=True)`: a quarter turn clockwise.
fn rotate_clockwise(f: &RgbFrames) -> RgbFrames {
    let (h, w) = (f.height, f.width);
    let mut data = vec![0u8; f.data.len()];
    for i in 0..f.count {
        let src = f.frame(i);
        let dst = &mut data[i * h * w * 3..(i + 1) * h * w * 3];
        for y in 0..h {
            for x in 0..w {
                // (x, y) goes to row x, column h - 1 - y of the w x h result.
                let d = (x * h + (h - 1 - y)) * 3;
                dst[d..d + 3].copy_from_slice(&src[(y * w + x) * 3..(y * w + x) * 3 + 3]);
            }
        }
    }
    RgbFrames { count: f.count, height: w, width: h, data }
}

/// Pick `cfg.k` frames: `candidates` are the decoded frames at `indices` (from
/// `candidate_indices`); returns frame numbers of the video, ascending.
pub async fn sample_frames(gpu: &Gpu, vggt: &Vggt, candidates: &RgbFrames, indices: &[usize], cfg: &SamplerConfig) -> MResult<Vec<usize>> {
    if candidates.count != indices.len() {
        return Err(ModelError::Input(format!("{} candidate frames for {} indices", candidates.count, indices.len())));
    }
    let (px, h, w) = vggt_frames(candidates, cfg.width)?;
    let frames = Frames { pixels: &px, count: candidates.count, height: h, width: w };
    let pc = vggt.point_cloud(gpu, &frames, cfg.source).await?;
    let sel = select_frames(&PointMaps { points: &pc.points, conf: &pc.conf, frames: pc.frames }, cfg.k)?;
    Ok(sel.indices.iter().map(|&i| indices[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_a_clockwise_quarter_turn() {
        // 2 x 3 image with pixel values = index; after the turn it is 3 x 2.
        let data: Vec<u8> = (0..6).flat_map(|i| [i as u8; 3]).collect();
        let r = rotate_clockwise(&RgbFrames { count: 1, height: 2, width: 3, data });
        let v: Vec<u8> = r.data.chunks(3).map(|p| p[0]).collect();
        // rows of the original: [0 1 2], [3 4 5] -> clockwise: [3 0], [4 1], [5 2]
        assert_eq!((r.height, r.width, v), (3, 2, vec![3, 0, 4, 1, 5, 2]));
    }

    #[test]
    fn crop_mode_sizes() {
        let f = RgbFrames { count: 1, height: 480, width: 640, data: vec![128; 480 * 640 * 3] };
        let (_, h, w) = vggt_frames(&f, 518).unwrap();
        assert_eq!((h, w), (392, 518)); // 640x480 -> 518x392 as the spec says
        let p = RgbFrames { count: 1, height: 640, width: 480, data: vec![128; 480 * 640 * 3] };
        assert_eq!(vggt_frames(&p, 518).unwrap().1, 392); // portrait: turned first
        let tall = RgbFrames { count: 1, height: 100, width: 100, data: vec![0; 100 * 100 * 3] };
        assert_eq!(vggt_frames(&tall, 224).unwrap().1, 224);
        assert!(vggt_frames(&f, 500).is_err());
    }
}
