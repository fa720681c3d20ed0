//! CPU preprocessing, exactly as the reference pipeline does it (spec §2): frame sampling
//! (qwen-vl-utils' uniform indices, the space-aware sampler's candidate indices), the frame size
//! (`smart_resize` with the video / image pixel budgets), the resize (torchvision's antialiased
//! bicubic for videos, Pillow's bicubic for images), and the two encoders' inputs: the Qwen ViT's
//! `pixel_values(_videos)` rows with their (t, h, w) grid and VGGT's [0, 1] frames.
//!
//! Pure Rust, no threads: the same code runs natively and in wasm32.
//!
//! Frames are RGB `u8` in [count, height, width, 3] order ([`RgbFrames`]), as decoders hand them
//! over and as the fixtures store them.

mod layout;
mod resize;
mod sampling;
mod sizing;

pub use layout::{
    normalize_clip, prepare_frame_list, prepare_image, prepare_video, qwen_image_input, qwen_video_input, vggt_input, FrameListSizing, PreparedImage, PreparedVideo,
    VggtInput, VitInput, CLIP_MEAN, CLIP_STD, MERGE_SIZE, PATCH_SIZE, TEMPORAL_PATCH_SIZE,
};
pub use resize::{resize_pil_bicubic, resize_torchvision_bicubic, PilPassOrder, TorchFloat};
pub use sampling::{frame_indices, frame_indices_with, linspace_trunc, round_nframes, sa_candidate_indices, smart_nframes, SA_CANDIDATES};
pub use sizing::{
    image_budget, image_size, smart_resize, video_budget, video_frame_size, PixelBudget, FRAME_FACTOR, IMAGE_FACTOR, IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, MAX_RATIO,
    PROCESSOR_MAX_PIXELS, PROCESSOR_MIN_PIXELS, VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, VIDEO_TOTAL_PIXELS,
};

/// What can go wrong before the model sees a pixel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("the video has no frames")]
    NoFrames,
    /// qwen-vl-utils `smart_nframes`: "nframes should in interval [2, total_frames]" (ValueError).
    #[error("{requested} frames requested (rounded to {rounded}): the count must lie in [2, {total}], the video's length")]
    FrameCount { requested: usize, rounded: usize, total: usize },
    /// qwen-vl-utils / transformers `smart_resize`: aspect ratio must be smaller than 200.
    #[error("absolute aspect ratio must be smaller than {MAX_RATIO}, got {ratio} ({height} x {width})")]
    AspectRatio { height: usize, width: usize, ratio: f64 },
    #[error("bad size {height} x {width}: {why}")]
    Size { height: usize, width: usize, why: String },
    #[error("bad pixel budget: min_pixels {min} > max_pixels {max}")]
    Budget { min: f64, max: f64 },
    #[error("frame index {index} out of range: {count} frames")]
    FrameIndex { index: usize, count: usize },
    #[error("an image is one frame, got {count}")]
    ImageCount { count: usize },
    #[error("frame buffer holds {got} bytes, {count} x {height} x {width} x 3 needs {want}")]
    Buffer { count: usize, height: usize, width: usize, got: usize, want: usize },
}

pub type Result<T> = std::result::Result<T, PreprocessError>;

/// RGB frames, `u8`, [count, height, width, 3] row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbFrames {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

impl RgbFrames {
    pub fn new(count: usize, height: usize, width: usize, data: Vec<u8>) -> Result<RgbFrames> {
        let want = count * height * width * 3;
        if data.len() != want {
            return Err(PreprocessError::Buffer { count, height, width, got: data.len(), want });
        }
        if count == 0 {
            return Err(PreprocessError::NoFrames);
        }
        if height == 0 || width == 0 {
            return Err(PreprocessError::Size { height, width, why: "empty frame".into() });
        }
        Ok(RgbFrames { count, height, width, data })
    }

    /// From RGBA pixels (e.g. a canvas / WebCodecs `VideoFrame.copyTo` in RGBA), alpha dropped.
    pub fn from_rgba(count: usize, height: usize, width: usize, rgba: &[u8]) -> Result<RgbFrames> {
        let want = count * height * width * 4;
        if rgba.len() != want {
            return Err(PreprocessError::Buffer { count, height, width, got: rgba.len() * 3 / 4, want: want * 3 / 4 });
        }
        let data = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        RgbFrames::new(count, height, width, data)
    }

    /// Frame `i` as [height, width, 3] bytes.
    pub fn frame(&self, i: usize) -> &[u8] {
        let n = self.height * self.width * 3;
        &self.data[i * n..(i + 1) * n]
    }

    /// The frames at `indices`, in that order (e.g. [`frame_indices`] into a decoded video).
    pub fn select(&self, indices: &[usize]) -> Result<RgbFrames> {
        let mut data = Vec::with_capacity(indices.len() * self.height * self.width * 3);
        for &i in indices {
            if i >= self.count {
                return Err(PreprocessError::FrameIndex { index: i, count: self.count });
            }
            data.extend_from_slice(self.frame(i));
        }
        RgbFrames::new(indices.len(), self.height, self.width, data)
    }
}
