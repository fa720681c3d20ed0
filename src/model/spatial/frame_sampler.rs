//! Space-aware frame sampling from a decoded video (spec 4.1): candidate frames spread over the
//! video, VGGT's "crop" preprocessing (portrait frames turned a quarter, width resized to the
//! sampler's width with Pillow's bicubic, height to a multiple of 14, centre-cropped to a square
//! at most), VGGT's point cloud, then the coverage selection. Two presets: the full mode of the
//! released code (128 candidates, 518 px) and a fast mode for browsers (32 candidates, 224 px).

use super::sampling::{select_frames, valid_points, PointMaps, Selection};
use crate::gpu::Gpu;
use crate::model::vggt::{Camera, Frames, GeometrySource, Vggt};
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
    let h = resized_height(src.height, src.width, width);
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

/// The height a landscape frame of `height` x `width` gets when resized to `width_to` px wide
/// (a multiple of 14).
fn resized_height(height: usize, width: usize, width_to: usize) -> usize {
    ((height as f64 * width_to as f64 / width as f64 / 14.0).round() as usize * 14).max(14)
}

/// (height, width) of frames of `height` x `width` after `vggt_frames` at sampler width `width_to`.
pub fn vggt_frame_size(height: usize, width: usize, width_to: usize) -> (usize, usize) {
    let (h, w) = if height > width { (width, height) } else { (height, width) };
    (resized_height(h, w, width_to).min(width_to), width_to)
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

/// At most this many scene points are handed to the page for display.
pub const MAX_SCENE_POINTS: usize = 120_000;

/// The sampler's choice with what it saw, for display.
pub struct SampledScene {
    /// Chosen candidate positions, ascending.
    pub selection: Selection,
    /// Points that passed the selection's validity test (at most `max_points`, evenly
    /// subsampled), xyz in the first camera's frame: [n, 3].
    pub points: Vec<f32>,
    /// Their colours (rgb) from VGGT's input pixels: [n, 3].
    pub colors: Vec<u8>,
    /// Their candidate positions.
    pub point_frame: Vec<u16>,
    /// Each candidate's camera-to-world [R | t] (3x4, row-major) from the camera head; empty
    /// when the package has none.
    pub cameras: Vec<f32>,
    /// Time of the VGGT work (aggregator, heads, readback), ms.
    pub vggt_ms: f64,
}

/// The whole sampler on `candidates` (decoded at `candidate_indices`), keeping what it saw:
/// `on_stage` hears "sampling: VGGT" before the VGGT work and "sampling: selection" before the
/// selection.
pub async fn sample_scene(
    gpu: &Gpu,
    vggt: &Vggt,
    candidates: &RgbFrames,
    cfg: &SamplerConfig,
    max_points: usize,
    on_stage: &mut dyn FnMut(&str),
) -> MResult<SampledScene> {
    if cfg.k == 0 {
        return Err(ModelError::Input("frame sampling needs at least one frame to pick".into()));
    }
    if candidates.count > u16::MAX as usize {
        return Err(ModelError::Input(format!("{} candidate frames: at most {} (use candidate_indices)", candidates.count, u16::MAX)));
    }
    let (px, h, w) = vggt_frames(candidates, cfg.width)?;
    let frames = Frames { pixels: &px, count: candidates.count, height: h, width: w };
    on_stage("sampling: VGGT");
    let t0 = crate::gpu::clock::now_ms();
    let pc = vggt.point_cloud_with(gpu, &frames, cfg.source, true).await?;
    let vggt_ms = crate::gpu::clock::now_ms() - t0;
    on_stage("sampling: selection");
    let maps = PointMaps { points: &pc.points, conf: &pc.conf, frames: pc.frames };
    let selection = select_frames(&maps, cfg.k)?;
    if (pc.height, pc.width) != (h, w) {
        return Err(ModelError::Input(format!("point maps of {}x{} for frames of {w}x{h}", pc.width, pc.height)));
    }
    let (points, colors, point_frame) = scene_points(&maps, &valid_points(&maps)?, &px, h * w, max_points);
    let cameras = pc.cameras.iter().flatten().flat_map(camera_to_world).collect();
    Ok(SampledScene { selection, points, colors, point_frame, cameras, vggt_ms })
}

/// The valid points (`valid`), evenly subsampled to at most `max`, with their colours from
/// `pixels` ([frames, 3, pixels_per_frame] in [0, 1]) and frame numbers.
pub fn scene_points(maps: &PointMaps, valid: &[bool], pixels: &[f32], per_frame: usize, max: usize) -> (Vec<f32>, Vec<u8>, Vec<u16>) {
    let idx: Vec<usize> = (0..valid.len()).filter(|&i| valid[i]).collect();
    let n = idx.len().min(max);
    let (mut points, mut colors, mut frame) = (Vec::with_capacity(3 * n), Vec::with_capacity(3 * n), Vec::with_capacity(n));
    for j in 0..n {
        let i = idx[j * idx.len() / n];
        let (f, p) = (i / per_frame, i % per_frame);
        points.extend_from_slice(&maps.points[3 * i..3 * i + 3]);
        colors.extend((0..3).map(|c| (pixels[(f * 3 + c) * per_frame + p] * 255.0).round().clamp(0.0, 255.0) as u8));
        frame.push(f as u16);
    }
    (points, colors, frame)
}

/// Camera-to-world [Rᵀ | −Rᵀ t] (3x4, row-major) of a world-to-camera extrinsic [R | t].
pub fn camera_to_world(c: &Camera) -> [f32; 12] {
    let e = &c.extrinsic;
    let mut out = [0f32; 12];
    for i in 0..3 {
        for j in 0..3 {
            out[4 * i + j] = e[j][i] as f32;
        }
        out[4 * i + 3] = -(0..3).map(|j| e[j][i] * e[j][3]).sum::<f64>() as f32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_points_keep_valid_points_evenly_with_their_colours() {
        // 2 frames of 2 pixels; conf median 2.5: points 2 and 3 (frame 1) are valid.
        let points: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let conf = [1.0, 2.0, 3.0, 4.0];
        let maps = PointMaps { points: &points, conf: &conf, frames: 2 };
        let valid = valid_points(&maps).unwrap();
        assert_eq!(valid, vec![false, false, true, true]);
        // pixels [2 frames, 3 channels, 2 px]
        let px: Vec<f32> = (0..12).map(|v| v as f32 / 255.0).collect();
        let (p, c, f) = scene_points(&maps, &valid, &px, 2, 10);
        assert_eq!(p, vec![6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        assert_eq!(c, vec![6, 8, 10, 7, 9, 11]);
        assert_eq!(f, vec![1, 1]);
        let (p, _, f) = scene_points(&maps, &valid, &px, 2, 1);
        assert_eq!((p, f), (vec![6.0, 7.0, 8.0], vec![1]));
    }

    #[test]
    fn camera_to_world_inverts_the_extrinsic() {
        // R = 90 degrees about z, t = (1, 2, 3): the camera centre is -Rᵀ t.
        let cam = Camera {
            extrinsic: [[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0]],
            intrinsic: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        };
        let m = camera_to_world(&cam);
        assert_eq!(m, [0.0, 1.0, 0.0, -2.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, -3.0]);
        // world point of the camera centre maps to camera origin: R c + t = 0
        let c = [m[3] as f64, m[7] as f64, m[11] as f64];
        for i in 0..3 {
            let v: f64 = (0..3).map(|j| cam.extrinsic[i][j] * c[j]).sum::<f64>() + cam.extrinsic[i][3];
            assert!(v.abs() < 1e-9);
        }
    }

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
        assert_eq!(vggt_frame_size(480, 640, 518), (392, 518));
        assert_eq!(vggt_frame_size(640, 480, 518), (392, 518));
        assert_eq!(vggt_frame_size(100, 100, 224), (224, 224));
        assert_eq!(vggt_frame_size(480, 640, 224), (168, 224));
    }
}
