//! Answer a question about a video file, a folder of frames or a list of images (or a text-only
//! question): frames sampled (uniformly, or space-aware with a VGGT package), preprocessed as the
//! reference does, encoded once, the reply streamed piece by piece. A plain Qwen2.5-VL package
//! takes the same path without the spatial encoder, and a single image as Qwen2.5-VL's image.

use std::path::{Path, PathBuf};

use super::video::{decode_frames, decode_images, probe};
use crate::gpu::{clock::now_ms, Gpu, Recorder};
use crate::model::qwen::chat::{QwenTokenizer, TextStream};
use crate::model::qwen::generate::{GenerationConfig, StopReason};
use crate::model::qwen::rope_index::VisionGrid;
use crate::model::qwen::vision_layout::Grid;
use crate::model::spatial::frame_sampler::{candidate_indices, sample_frames, SamplerConfig};
use crate::model::spatial::{SpatialMllm, VideoInput, VideoSession};
use crate::model::vggt::Vggt;
use crate::model::Params;
use crate::preprocess::{frame_indices, linspace_trunc, prepare_image, prepare_video, PilPassOrder, PreparedVideo, RgbFrames, TorchFloat};
use crate::weights::package::Package;

/// Prompt tokens the context holds besides the visual block (system prompt, template, question).
const TEXT_CONTEXT: usize = 512;

/// Where the frames come from.
pub enum Source {
    Video(PathBuf),
    /// Image files (a folder's frames, sorted by name), used as the video's frames.
    Images(Vec<PathBuf>),
}

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|x| x.to_str()).is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

impl Source {
    /// One path: a video file or a folder of PNG / JPEG frames. Several: image files, in the order
    /// given, used as the video's frames.
    pub fn from_paths(paths: &[PathBuf]) -> Result<Source, String> {
        match paths {
            [] => Err("give a video file, a folder of frames, or image files".into()),
            [one] if !is_image(one) => Source::from_path(one),
            many => {
                for p in many {
                    if !p.is_file() {
                        return Err(format!("{}: no such image file", p.display()));
                    }
                    if !is_image(p) {
                        return Err(format!("{}: several inputs must all be .png / .jpg images (a video is given alone)", p.display()));
                    }
                }
                Ok(Source::Images(many.to_vec()))
            }
        }
    }

    /// A video file, or a folder of PNG / JPEG frames.
    pub fn from_path(path: &Path) -> Result<Source, String> {
        if !path.exists() {
            return Err(format!("{}: no such file or folder", path.display()));
        }
        if !path.is_dir() {
            return Ok(Source::Video(path.to_path_buf()));
        }
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_image(p)).collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("{}: no .png / .jpg frames in this folder", path.display()));
        }
        Ok(Source::Images(files))
    }
}

/// How frames are chosen.
pub enum FrameChoice {
    Uniform,
    /// Space-aware: a VGGT model (a `vggt` package with its point head) and the sampler preset.
    SpaceAware {
        vggt: Box<Vggt>,
        cfg: SamplerConfig,
    },
}

pub struct Answer {
    /// What the prompt held: "video", "image" or "text".
    pub input: &'static str,
    pub text: String,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// The frames used (indices into the video or the image list).
    pub frames: Vec<usize>,
    pub frame_size: (usize, usize),
    pub preprocess_ms: f64,
    pub encode_ms: f64,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

/// Load a Spatial-MLLM or Qwen2.5-VL package and its tokenizer.
pub fn load_model(gpu: &Gpu, dir: &Path) -> Result<(SpatialMllm, QwenTokenizer), String> {
    let pkg = Package::open(dir).map_err(|e| e.to_string())?;
    let tok_file =
        pkg.manifest.tokenizer.clone().ok_or_else(|| format!("{}: the package has no tokenizer.json: convert the checkpoint with its tokenizer", dir.display()))?;
    let tok = QwenTokenizer::from_bytes(&std::fs::read(dir.join(&tok_file)).map_err(|e| format!("{tok_file}: {e}"))?).map_err(|e| e.to_string())?;
    let params = Params::new(pkg.load(gpu, &mut |_| {}).map_err(|e| e.to_string())?);
    let m = pollster::block_on(SpatialMllm::new(gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).map_err(|e| e.to_string())?;
    tok.check_config(&m.cfg.tokens).map_err(|e| e.to_string())?;
    Ok((m, tok))
}

/// Load a VGGT package for space-aware sampling.
pub fn load_vggt(gpu: &Gpu, dir: &Path) -> Result<Vggt, String> {
    let pkg = Package::open(dir).map_err(|e| e.to_string())?;
    let params = Params::new(pkg.load(gpu, &mut |_| {}).map_err(|e| e.to_string())?);
    pollster::block_on(Vggt::new(gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).map_err(|e| e.to_string())
}

/// The sampled frames of `source`.
fn frames(gpu: &Gpu, source: &Source, n: usize, choice: &FrameChoice) -> Result<(RgbFrames, Vec<usize>), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match source {
        Source::Video(path) => {
            let info = probe(path).map_err(|x| e(&x))?;
            let idx = match choice {
                FrameChoice::Uniform => frame_indices(info.frames, n).map_err(|x| e(&x))?,
                FrameChoice::SpaceAware { vggt, cfg } => {
                    let cfg = SamplerConfig { k: n, ..*cfg };
                    let cands = candidate_indices(info.frames, &cfg).map_err(|x| e(&x))?;
                    let decoded = decode_frames(path, &info, &cands).map_err(|x| e(&x))?;
                    let mut picked = pollster::block_on(sample_frames(gpu, vggt, &decoded, &cands, &cfg)).map_err(|x| e(&x))?;
                    if picked.len() % 2 == 1 {
                        picked.push(*picked.last().expect("one at least")); // temporal pairs
                    }
                    picked
                }
            };
            Ok((decode_frames(path, &info, &idx).map_err(|x| e(&x))?, idx))
        }
        Source::Images(files) => {
            let idx = if files.len() > n { linspace_trunc(files.len(), n) } else { (0..files.len()).collect() };
            let chosen: Vec<PathBuf> = idx.iter().map(|&i| files[i].clone()).collect();
            Ok((decode_images(&chosen).map_err(|x| e(&x))?, idx))
        }
    }
}

/// A video (or image) encoded once, or a text-only session: later questions run only the
/// language model.
pub struct EncodedVideo {
    session: VideoSession,
    /// "video", "image" or "text".
    pub input: &'static str,
    pub frames: Vec<usize>,
    pub frame_size: (usize, usize),
    pub preprocess_ms: f64,
    pub encode_ms: f64,
}

fn err(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// Sample, preprocess and encode `source`; `max_new_tokens` sizes the context. Without a spatial
/// encoder one image goes through Qwen2.5-VL's image path; otherwise images are a video's frames.
pub fn encode(gpu: &Gpu, m: &SpatialMllm, source: &Source, n_frames: usize, choice: &FrameChoice, max_new_tokens: usize) -> Result<EncodedVideo, String> {
    let t0 = now_ms();
    if let Source::Images(files) = source {
        if files.len() == 1 && !m.has_spatial_encoder() {
            let raw = decode_images(files).map_err(err)?;
            let decode_ms = now_ms() - t0;
            let mut v = encode_image(gpu, m, &raw, max_new_tokens)?;
            v.preprocess_ms += decode_ms;
            return Ok(v);
        }
    }
    let (raw, used) = frames(gpu, source, n_frames, choice)?;
    let sampled_ms = now_ms() - t0;
    let mut v = encode_frames(gpu, m, &raw, max_new_tokens)?;
    v.frames = used;
    v.preprocess_ms += sampled_ms;
    Ok(v)
}

/// Preprocess and encode sampled frames as a video (`frames` numbers them 0..count).
pub fn encode_frames(gpu: &Gpu, m: &SpatialMllm, raw: &RgbFrames, max_new_tokens: usize) -> Result<EncodedVideo, String> {
    let t0 = now_ms();
    let prepared = prepare_video(raw, TorchFloat::Fma).map_err(err)?;
    let mut v = encode_prepared(gpu, m, &prepared, max_new_tokens)?;
    v.frames = (0..raw.count).collect();
    v.preprocess_ms = now_ms() - t0 - v.encode_ms;
    Ok(v)
}

/// Encode a preprocessed video (the frames as the processor receives them).
pub fn encode_prepared(gpu: &Gpu, m: &SpatialMllm, prepared: &PreparedVideo, max_new_tokens: usize) -> Result<EncodedVideo, String> {
    let t1 = now_ms();
    let g = prepared.vit.grid_thw;
    let grid = Grid { t: g[0], h: g[1], w: g[2] };
    let mut rec = Recorder::new(gpu);
    let input = VideoInput { vit_patches: &prepared.vit.pixel_values, grid, frames: prepared.vggt.as_frames() };
    let visual = m.encode_video(&mut rec, &input, None).map_err(err)?;
    rec.submit().map_err(err)?;
    pollster::block_on(gpu.finish()).map_err(err)?;
    let encode_ms = now_ms() - t1;
    // qwen-vl-utils' default: 2 frames per temporal patch at 2 fps = 1 s per grid step.
    let vgrid = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: 1.0 };
    let capacity = visual.rows() + TEXT_CONTEXT + max_new_tokens;
    let session = VideoSession::new(gpu, m, visual, vgrid, capacity).map_err(err)?;
    let frames = (0..prepared.frames.count).collect();
    Ok(EncodedVideo { session, input: "video", frames, frame_size: (prepared.frames.width, prepared.frames.height), preprocess_ms: 0.0, encode_ms })
}

/// Preprocess (the HF image processor: its budget, Pillow's bicubic) and encode one image.
pub fn encode_image(gpu: &Gpu, m: &SpatialMllm, raw: &RgbFrames, max_new_tokens: usize) -> Result<EncodedVideo, String> {
    let t0 = now_ms();
    let prepared = prepare_image(raw, PilPassOrder::default()).map_err(err)?;
    let preprocess_ms = now_ms() - t0;
    let t1 = now_ms();
    let g = prepared.vit.grid_thw;
    let grid = Grid { t: g[0], h: g[1], w: g[2] };
    let mut rec = Recorder::new(gpu);
    let visual = m.encode_image(&mut rec, &prepared.vit.pixel_values, grid).map_err(err)?;
    rec.submit().map_err(err)?;
    pollster::block_on(gpu.finish()).map_err(err)?;
    let encode_ms = now_ms() - t1;
    // Images have no time axis: every temporal position is the block's start.
    let vgrid = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: 0.0 };
    let capacity = visual.rows() + TEXT_CONTEXT + max_new_tokens;
    let session = VideoSession::image(gpu, m, visual, vgrid, capacity).map_err(err)?;
    Ok(EncodedVideo { session, input: "image", frames: vec![0], frame_size: (prepared.image.width, prepared.image.height), preprocess_ms, encode_ms })
}

impl EncodedVideo {
    /// A session with no visual block, for text-only questions.
    pub fn text_only(gpu: &Gpu, m: &SpatialMllm, max_new_tokens: usize) -> Result<EncodedVideo, String> {
        let session = VideoSession::text_only(gpu, m, TEXT_CONTEXT + max_new_tokens).map_err(err)?;
        Ok(EncodedVideo { session, input: "text", frames: vec![], frame_size: (0, 0), preprocess_ms: 0.0, encode_ms: 0.0 })
    }

    /// The session the questions go to (its prompts, its last prefill).
    pub fn session(&self) -> &VideoSession {
        &self.session
    }
}

/// The reply to one question about an encoded video.
pub struct Reply {
    pub text: String,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

impl EncodedVideo {
    /// Ask `question`; `on_text` receives the reply piece by piece (whole UTF-8 characters).
    pub fn ask(
        &mut self,
        gpu: &Gpu,
        m: &SpatialMllm,
        tok: &QwenTokenizer,
        question: &str,
        gen: &GenerationConfig,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, String> {
        let mut stream = TextStream::new();
        let mut text = String::new();
        let mut stream_err = None;
        let mut on_token = |id: u32| {
            match stream.push(tok, id) {
                Ok(Some(p)) => {
                    on_text(&p);
                    text += &p;
                }
                Ok(None) => {}
                Err(x) => stream_err = Some(x.to_string()),
            }
            true
        };
        let out = pollster::block_on(self.session.ask(gpu, m, tok, question, gen, &mut on_token)).map_err(err)?;
        if let Some(x) = stream_err {
            return Err(x);
        }
        if let Some(p) = stream.finish(tok).map_err(err)? {
            on_text(&p);
            text += &p;
        }
        Ok(Reply { text, tokens: out.tokens, stop: out.reason, prefill_ms: out.prefill_ms, decode_ms: out.decode_ms })
    }
}

/// Encode `source` (None: a text-only question) and answer `question` (the `run` command).
#[allow(clippy::too_many_arguments)]
pub fn answer(
    gpu: &Gpu,
    m: &SpatialMllm,
    tok: &QwenTokenizer,
    source: Option<&Source>,
    question: &str,
    n_frames: usize,
    choice: &FrameChoice,
    gen: &GenerationConfig,
    on_text: &mut dyn FnMut(&str),
) -> Result<Answer, String> {
    let mut v = match source {
        Some(source) => encode(gpu, m, source, n_frames, choice, gen.max_new_tokens)?,
        None => EncodedVideo::text_only(gpu, m, gen.max_new_tokens)?,
    };
    let r = v.ask(gpu, m, tok, question, gen, on_text)?;
    Ok(Answer {
        input: v.input,
        text: r.text,
        tokens: r.tokens,
        stop: r.stop,
        frames: v.frames,
        frame_size: v.frame_size,
        preprocess_ms: v.preprocess_ms,
        encode_ms: v.encode_ms,
        prefill_ms: r.prefill_ms,
        decode_ms: r.decode_ms,
    })
}
