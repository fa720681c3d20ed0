//! The encoders' inputs from resized frames (spec §2.2–2.3).
//!
//! * Qwen ViT (`Qwen2VLImageProcessor._preprocess`, transformers 4.51.3): each value is
//!   rescaled as `f32(f64(v) · (1/255))` and normalised `(x − mean) / std` in f32 with the OpenAI
//!   CLIP constants; an odd frame count is padded by repeating the last frame; rows are
//!   (t, block_row, block_col, row_in_block, col_in_block) over 14 × 14 patches in 2 × 2 merge
//!   blocks, each row (channel, frame_in_pair, y, x) = 3 · 2 · 14 · 14 = 1176 values.
//! * VGGT: the same frames as `frame.float() / 255` in f32, [frames, 3, H, W]; its ImageNet
//!   normalisation happens inside the aggregator.

use super::resize::{resize_pil_bicubic, resize_torchvision_bicubic, PilPassOrder, TorchFloat};
use super::sizing::{image_budget, image_size, smart_resize, video_frame_size, IMAGE_FACTOR, PROCESSOR_MAX_PIXELS, PROCESSOR_MIN_PIXELS};
use super::{PreprocessError, Result, RgbFrames};

pub const PATCH_SIZE: usize = 14;
pub const TEMPORAL_PATCH_SIZE: usize = 2;
pub const MERGE_SIZE: usize = 2;
/// OpenAI CLIP mean / std (`OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`), as the processor's f32 arrays.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)] // upstream's digits, kept as written (the f32 values are the same)
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];
/// Values per ViT input row.
pub const ROW: usize = 3 * TEMPORAL_PATCH_SIZE * PATCH_SIZE * PATCH_SIZE;

/// The processor's value for byte `v` of channel `c`.
pub fn normalize_clip(v: u8, c: usize) -> f32 {
    let x = (v as f64 * (1.0 / 255.0)) as f32;
    (x - CLIP_MEAN[c]) / CLIP_STD[c]
}

/// `pixel_values` / `pixel_values_videos` and `image_grid_thw` / `video_grid_thw`.
#[derive(Clone, Debug, PartialEq)]
pub struct VitInput {
    /// [t · h · w, 1176] row-major, in the processor's row order.
    pub pixel_values: Vec<f32>,
    /// (t, h, w) in patches: frame pairs, rows and columns of 14 px.
    pub grid_thw: [usize; 3],
}

impl VitInput {
    pub const ROW: usize = ROW;

    pub fn rows(&self) -> usize {
        self.grid_thw.iter().product()
    }

    /// Tokens after the 2 × 2 merger: what the prompt's `<|video_pad|>` / `<|image_pad|>` count is.
    pub fn merged_tokens(&self) -> usize {
        self.rows() / (MERGE_SIZE * MERGE_SIZE)
    }
}

/// VGGT's frames: values in [0, 1], [count, 3, height, width].
#[derive(Clone, Debug, PartialEq)]
pub struct VggtInput {
    pub pixels: Vec<f32>,
    pub count: usize,
    pub height: usize,
    pub width: usize,
}

impl VggtInput {
    pub fn as_frames(&self) -> crate::model::vggt::Frames<'_> {
        crate::model::vggt::Frames { pixels: &self.pixels, count: self.count, height: self.height, width: self.width }
    }
}

fn check_vit_size(frames: &RgbFrames) -> Result<()> {
    let (h, w) = (frames.height, frames.width);
    if h % IMAGE_FACTOR != 0 || w % IMAGE_FACTOR != 0 {
        return Err(PreprocessError::Size { height: h, width: w, why: format!("not a multiple of {IMAGE_FACTOR}: resize first") });
    }
    let area = h * w;
    if !(PROCESSOR_MIN_PIXELS..=PROCESSOR_MAX_PIXELS).contains(&area) {
        return Err(PreprocessError::Size {
            height: h,
            width: w,
            why: format!("outside the processor's range [{PROCESSOR_MIN_PIXELS}, {PROCESSOR_MAX_PIXELS}] px, it would resize again"),
        });
    }
    Ok(())
}

/// The processor's `pixel_values_videos` for frames already at a multiple of 28 (what
/// qwen-vl-utils hands it; its own resize is then a no-op).
pub fn qwen_video_input(frames: &RgbFrames) -> Result<VitInput> {
    check_vit_size(frames)?;
    let (p, m, tp) = (PATCH_SIZE, MERGE_SIZE, TEMPORAL_PATCH_SIZE);
    let (gt, gh, gw) = (frames.count.div_ceil(tp), frames.height / p, frames.width / p);
    let width = frames.width;
    let mut out = Vec::with_capacity(gt * gh * gw * ROW);
    for t in 0..gt {
        // The odd count's missing frame repeats the last one.
        let pair: Vec<&[u8]> = (0..tp).map(|k| frames.frame((t * tp + k).min(frames.count - 1))).collect();
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for mh in 0..m {
                    for mw in 0..m {
                        let (y0, x0) = ((bh * m + mh) * p, (bw * m + mw) * p);
                        for c in 0..3 {
                            for frame in &pair {
                                for y in y0..y0 + p {
                                    let row = &frame[(y * width + x0) * 3..(y * width + x0 + p) * 3];
                                    out.extend(row.chunks_exact(3).map(|px| normalize_clip(px[c], c)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(VitInput { pixel_values: out, grid_thw: [gt, gh, gw] })
}

/// The processor's `pixel_values` for one image at a multiple of 28: the image is its own
/// temporal pair (grid t = 1).
pub fn qwen_image_input(image: &RgbFrames) -> Result<VitInput> {
    if image.count != 1 {
        return Err(PreprocessError::ImageCount { count: image.count });
    }
    qwen_video_input(image)
}

/// VGGT's input: `frames.float() / 255` (f32 division), [count, 3, H, W].
pub fn vggt_input(frames: &RgbFrames) -> VggtInput {
    let (n, h, w) = (frames.count, frames.height, frames.width);
    let mut pixels = vec![0f32; n * 3 * h * w];
    for f in 0..n {
        for (i, px) in frames.frame(f).chunks_exact(3).enumerate() {
            for c in 0..3 {
                pixels[(f * 3 + c) * h * w + i] = px[c] as f32 / 255.0;
            }
        }
    }
    VggtInput { pixels, count: n, height: h, width: w }
}

/// A sampled video ready for both encoders.
#[derive(Clone, Debug)]
pub struct PreparedVideo {
    /// The resized frames both encoders see (odd counts padded with the last frame).
    pub frames: RgbFrames,
    pub vit: VitInput,
    pub vggt: VggtInput,
}

/// qwen-vl-utils `fetch_video` after sampling, then the processor: the video budget for this
/// many frames, `smart_resize`, torchvision's bicubic resize, the ViT rows and VGGT's frames.
/// An odd count is first padded by repeating the last frame, as the frame-list path does, so
/// that VGGT sees the same frames as the ViT's temporal pairs.
pub fn prepare_video(sampled: &RgbFrames, mode: TorchFloat) -> Result<PreparedVideo> {
    let padded;
    let src = if sampled.count % TEMPORAL_PATCH_SIZE != 0 {
        let n = sampled.count.next_multiple_of(TEMPORAL_PATCH_SIZE);
        padded = sampled.select(&(0..n).map(|i| i.min(sampled.count - 1)).collect::<Vec<_>>())?;
        &padded
    } else {
        sampled
    };
    let (h, w) = video_frame_size(src.height, src.width, src.count)?;
    let frames = resize_torchvision_bicubic(src, h, w, mode)?;
    let vit = qwen_video_input(&frames)?;
    let vggt = vggt_input(&frames);
    Ok(PreparedVideo { frames, vit, vggt })
}

/// A single image ready for the ViT (and VGGT, whose image path duplicates it internally).
#[derive(Clone, Debug)]
pub struct PreparedImage {
    pub image: RgbFrames,
    pub vit: VitInput,
    pub vggt: VggtInput,
}

/// The HF image processor on one RGB image: its `smart_resize` range, Pillow's bicubic resize,
/// then the ViT rows.
pub fn prepare_image(image: &RgbFrames, order: PilPassOrder) -> Result<PreparedImage> {
    if image.count != 1 {
        return Err(PreprocessError::ImageCount { count: image.count });
    }
    let (h, w) = image_size(image.height, image.width)?;
    let image = if (h, w) == (image.height, image.width) { image.clone() } else { resize_pil_bicubic(image, h, w, order)? };
    let vit = qwen_image_input(&image)?;
    let vggt = vggt_input(&image);
    Ok(PreparedImage { image, vit, vggt })
}

/// How qwen-vl-utils sizes a video given as a list of frames (the space-aware sampler's PNGs,
/// spec §4.1): it changed between releases, and Spatial-MLLM does not pin one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FrameListSizing {
    /// qwen-vl-utils ≤ 0.0.11 (current when Spatial-MLLM was released): each frame goes through
    /// `fetch_image` (Pillow bicubic, factor 28, image budget 4 … 16 384 tokens); the list is padded
    /// to an even length and handed on as images. 640 × 480 frames stay 644 × 476.
    #[default]
    V0011,
    /// qwen-vl-utils 0.0.14: `fetch_image` receives the factor 28 as its patch size, so frames are
    /// sized to multiples of 56 (640 × 480 → 616 × 504); the padded list is then resized again with
    /// the video budget by torchvision (a copy when already inside it).
    V0014,
}

/// A video given as a list of frames (`{"type": "video", "video": [paths]}`), through
/// qwen-vl-utils' `fetch_video` list branch and the processor; VGGT gets the same frames.
pub fn prepare_frame_list(frames: &RgbFrames, sizing: FrameListSizing, order: PilPassOrder, mode: TorchFloat) -> Result<PreparedVideo> {
    let factor = match sizing {
        FrameListSizing::V0011 => IMAGE_FACTOR,
        FrameListSizing::V0014 => 2 * IMAGE_FACTOR,
    };
    let (min_pixels, max_pixels) = match sizing {
        FrameListSizing::V0011 => (image_budget().min_pixels, image_budget().max_pixels),
        // fetch_image's defaults scale with its (mistaken) patch factor: 4 · 56², 16 384 · 56².
        FrameListSizing::V0014 => ((4 * factor * factor) as f64, (16_384 * factor * factor) as f64),
    };
    let (h, w) = smart_resize(frames.height, frames.width, factor, min_pixels, max_pixels)?;
    let resized = if (h, w) == (frames.height, frames.width) { frames.clone() } else { resize_pil_bicubic(frames, h, w, order)? };
    let n = resized.count.next_multiple_of(TEMPORAL_PATCH_SIZE);
    let mut frames = resized.select(&(0..n).map(|i| i.min(resized.count - 1)).collect::<Vec<_>>())?;
    if sizing == FrameListSizing::V0014 {
        let (vh, vw) = video_frame_size(frames.height, frames.width, frames.count)?;
        if (vh, vw) != (frames.height, frames.width) {
            frames = resize_torchvision_bicubic(&frames, vh, vw, mode)?;
        }
    }
    let vit = qwen_video_input(&frames)?;
    let vggt = vggt_input(&frames);
    Ok(PreparedVideo { frames, vit, vggt })
}
