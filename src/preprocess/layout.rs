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
use super::sizing::{image_size, video_frame_size, IMAGE_FACTOR, PROCESSOR_MAX_PIXELS, PROCESSOR_MIN_PIXELS};
use super::{PreprocessError, Result, RgbFrames};

pub const PATCH_SIZE: usize = 14;
pub const TEMPORAL_PATCH_SIZE: usize = 2;
pub const MERGE_SIZE: usize = 2;
/// OpenAI CLIP mean / std (`OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`), as the processor's f32 arrays.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
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
        return Err(PreprocessError::FrameCount { requested: image.count, rounded: image.count, total: 1 });
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
        return Err(PreprocessError::FrameCount { requested: image.count, rounded: image.count, total: 1 });
    }
    let (h, w) = image_size(image.height, image.width)?;
    let image = if (h, w) == (image.height, image.width) { image.clone() } else { resize_pil_bicubic(image, h, w, order)? };
    let vit = qwen_image_input(&image)?;
    let vggt = vggt_input(&image);
    Ok(PreparedImage { image, vit, vggt })
}
