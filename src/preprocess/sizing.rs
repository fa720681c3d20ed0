//! Frame sizes: `smart_resize` (qwen-vl-utils `vision_process.py`, identical arithmetic in
//! transformers' `image_processing_qwen2_vl.py`) and the pixel budgets it is called with.
//!
//! Every step uses the same f64 operations as the Python code (true divisions, `math.sqrt`,
//! `round` half to even, `math.floor` / `math.ceil`), so sizes agree exactly.

use super::{PreprocessError, Result};

/// Frames per temporal patch: frame counts are multiples of this.
pub const FRAME_FACTOR: usize = 2;
/// Patch size 14 × spatial merge 2: frame sides are multiples of this.
pub const IMAGE_FACTOR: usize = 28;
/// Largest allowed aspect ratio (strictly smaller than this).
pub const MAX_RATIO: f64 = 200.0;
/// Video frames: at least 128 merged tokens per frame.
pub const VIDEO_MIN_PIXELS: usize = 128 * IMAGE_FACTOR * IMAGE_FACTOR;
/// Video frames: at most 768 merged tokens per frame.
pub const VIDEO_MAX_PIXELS: usize = 768 * IMAGE_FACTOR * IMAGE_FACTOR;
/// Pixel budget of a whole video: 128 000 tokens · 28² · 0.9 (qwen-vl-utils `MODEL_SEQ_LEN`
/// default; older releases call it `VIDEO_TOTAL_PIXELS`, overridable by the environment).
pub const VIDEO_TOTAL_PIXELS: f64 = (128_000 * IMAGE_FACTOR * IMAGE_FACTOR) as f64 * 0.9;
/// Images (qwen-vl-utils `fetch_image`): 4 … 16 384 merged tokens.
pub const IMAGE_MIN_PIXELS: usize = 4 * IMAGE_FACTOR * IMAGE_FACTOR;
pub const IMAGE_MAX_PIXELS: usize = 16_384 * IMAGE_FACTOR * IMAGE_FACTOR;
/// The HF image processor's range (`preprocessor_config.json` min_pixels / max_pixels of Qwen2.5-VL).
pub const PROCESSOR_MIN_PIXELS: usize = 3_136;
pub const PROCESSOR_MAX_PIXELS: usize = 12_845_056;

/// The (min_pixels, max_pixels) pair `smart_resize` is called with. Upstream mixes int and float
/// values here; f64 holds both exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelBudget {
    pub min_pixels: f64,
    pub max_pixels: f64,
}

/// qwen-vl-utils `fetch_video` budget for `nframes` sampled frames:
/// min = 128·28², max = max(min(768·28², VIDEO_TOTAL_PIXELS / nframes · 2), int(1.05 · min)).
pub fn video_budget(nframes: usize) -> PixelBudget {
    let min_pixels = VIDEO_MIN_PIXELS as f64;
    let by_total = VIDEO_TOTAL_PIXELS / nframes.max(1) as f64 * FRAME_FACTOR as f64;
    let max_pixels = (VIDEO_MAX_PIXELS as f64).min(by_total).max((min_pixels * 1.05).trunc());
    PixelBudget { min_pixels, max_pixels }
}

/// qwen-vl-utils `fetch_image` budget (equal to the HF processor's default range).
pub fn image_budget() -> PixelBudget {
    PixelBudget { min_pixels: IMAGE_MIN_PIXELS as f64, max_pixels: IMAGE_MAX_PIXELS as f64 }
}

fn round_by_factor(v: usize, factor: usize) -> usize {
    ((v as f64 / factor as f64).round_ties_even() as usize) * factor
}

/// `smart_resize(height, width, factor, min_pixels, max_pixels)` → (height, width): both sides
/// multiples of `factor` (at least `factor`), the area inside [min, max] where possible, the
/// aspect ratio kept as closely as possible.
///
/// Errors: aspect ratio ≥ 200 (upstream `ValueError`), max < min (upstream `assert`), an empty
/// side, and a side that rounds down to 0 under a small max budget (upstream would hand a 0-sized
/// target to the resize and fail there).
pub fn smart_resize(height: usize, width: usize, factor: usize, min_pixels: f64, max_pixels: f64) -> Result<(usize, usize)> {
    if height == 0 || width == 0 || factor == 0 {
        return Err(PreprocessError::Size { height, width, why: format!("empty side or factor {factor}") });
    }
    if max_pixels < min_pixels {
        return Err(PreprocessError::Budget { min: min_pixels, max: max_pixels });
    }
    let ratio = height.max(width) as f64 / height.min(width) as f64;
    if ratio > MAX_RATIO {
        return Err(PreprocessError::AspectRatio { height, width, ratio });
    }
    let (h, w, f) = (height as f64, width as f64, factor as f64);
    let mut h_bar = factor.max(round_by_factor(height, factor));
    let mut w_bar = factor.max(round_by_factor(width, factor));
    let area = (h_bar * w_bar) as f64;
    if area > max_pixels {
        let beta = ((h * w) / max_pixels).sqrt();
        h_bar = (h / beta / f).floor() as usize * factor;
        w_bar = (w / beta / f).floor() as usize * factor;
    } else if area < min_pixels {
        let beta = (min_pixels / (h * w)).sqrt();
        h_bar = (h * beta / f).ceil() as usize * factor;
        w_bar = (w * beta / f).ceil() as usize * factor;
    }
    if h_bar == 0 || w_bar == 0 {
        return Err(PreprocessError::Size { height, width, why: format!("a side rounds down to 0 under max_pixels {max_pixels}") });
    }
    Ok((h_bar, w_bar))
}

/// The size qwen-vl-utils resizes `nframes` sampled video frames of `height` × `width` to
/// (spec §2.1: 480 × 640 → 476 × 644 for 16 frames).
pub fn video_frame_size(height: usize, width: usize, nframes: usize) -> Result<(usize, usize)> {
    let b = video_budget(nframes);
    smart_resize(height, width, IMAGE_FACTOR, b.min_pixels, b.max_pixels)
}

/// The size the HF image processor (and qwen-vl-utils `fetch_image`) resizes an image to. The
/// processor also rejects sides shorter than 28 px.
pub fn image_size(height: usize, width: usize) -> Result<(usize, usize)> {
    if height < IMAGE_FACTOR || width < IMAGE_FACTOR {
        return Err(PreprocessError::Size { height, width, why: format!("must be at least {IMAGE_FACTOR} px") });
    }
    smart_resize(height, width, IMAGE_FACTOR, PROCESSOR_MIN_PIXELS as f64, PROCESSOR_MAX_PIXELS as f64)
}
