//! Answer a question about a video file, a folder of frames or a list of images (or a text-only
//! question): frames sampled (uniformly, or space-aware with a VGGT package), preprocessed as the
//! reference does, encoded once, the reply streamed piece by piece. A plain Qwen2.5-VL package
//! takes the same path without the spatial encoder, and a single image as Qwen2.5-VL's image. The
//! grid, the context and the session come from `model::spatial::pipeline`, as in the web engine.

use std::path::{Path, PathBuf};

use super::error::{NResult, NativeError};
use super::video::{decode_frames, decode_images, probe};
use crate::gpu::{clock::now_ms, Gpu};
use crate::model::qwen::chat::QwenTokenizer;
use crate::model::qwen::DecodeSteps;
use crate::model::qwen::generate::{GenerationConfig, StopReason};
use crate::model::spatial::frame_sampler::{candidate_indices, sample_frames, SamplerConfig};
use crate::model::spatial::{open_session, Reply, SpatialMllm, VideoSession, Visual};
use crate::model::vggt::Vggt;
use crate::model::Params;
use crate::preprocess::{frame_indices, linspace_trunc, prepare_image, prepare_video, PilPassOrder, PreparedVideo, RgbFrames, TorchFloat};
use crate::weights::package::Package;

/// Where the frames come from.
pub enum Source {
    Video(PathBuf),
    /// Image files (a folder's frames, sorted by name), used as the video's frames.
    Images(Vec<PathBuf>),
}

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|x| x.to_str()).is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

impl Source {
    /// One path: a video file or a folder of PNG / JPEG frames. Several: image files, in the order
    /// given, used as the video's frames.
    pub fn from_paths(paths: &[PathBuf]) -> NResult<Source> {
        match paths {
            [] => Err(NativeError::NoInput),
            [one] if !is_image(one) => Source::from_path(one),
            many => {
                for p in many {
                    if !p.is_file() {
                        return Err(NativeError::NoSuchImage { path: shown(p) });
                    }
                    if !is_image(p) {
                        return Err(NativeError::MixedInputs { path: shown(p) });
                    }
                }
                Ok(Source::Images(many.to_vec()))
            }
        }
    }

    /// A video file, or a folder of PNG / JPEG frames.
    pub fn from_path(path: &Path) -> NResult<Source> {
        if !path.exists() {
            return Err(NativeError::NotFound { path: shown(path) });
        }
        if !path.is_dir() {
            return Ok(Source::Video(path.to_path_buf()));
        }
        let entries = std::fs::read_dir(path).map_err(|source| NativeError::Read { path: shown(path), source })?;
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_image(p)).collect();
        files.sort();
        if files.is_empty() {
            return Err(NativeError::NoFrames { path: shown(path) });
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
pub fn load_model(gpu: &Gpu, dir: &Path) -> NResult<(SpatialMllm, QwenTokenizer)> {
    let pkg = Package::open(dir)?;
    let tok_file = pkg.manifest.tokenizer.clone().ok_or_else(|| NativeError::NoTokenizer { dir: shown(dir) })?;
    let bytes = std::fs::read(dir.join(&tok_file)).map_err(|source| NativeError::ReadTokenizer { file: tok_file.clone(), source })?;
    let tok = QwenTokenizer::from_bytes(&bytes)?;
    let params = Params::new(pkg.load(gpu, &mut |_| {})?);
    let mut m = pollster::block_on(SpatialMllm::new(gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params))?;
    tok.check_config(&m.cfg.tokens)?;
    // The decode step's kernels, measured on this GPU's first load of a model of this shape.
    super::tuning_store::tune(&mut DecodeSteps::new(&mut m.text), gpu, &super::tuning_store::path())?;
    Ok((m, tok))
}

/// Load a VGGT package for space-aware sampling.
pub fn load_vggt(gpu: &Gpu, dir: &Path) -> NResult<Vggt> {
    let pkg = Package::open(dir)?;
    let params = Params::new(pkg.load(gpu, &mut |_| {})?);
    Ok(pollster::block_on(Vggt::new(gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params))?)
}

/// The sampled frames of `source`.
fn frames(gpu: &Gpu, source: &Source, n: usize, choice: &FrameChoice) -> NResult<(RgbFrames, Vec<usize>)> {
    match source {
        Source::Video(path) => {
            let info = probe(path)?;
            let idx = match choice {
                FrameChoice::Uniform => frame_indices(info.frames, n)?,
                FrameChoice::SpaceAware { vggt, cfg } => {
                    let cfg = SamplerConfig { k: n, ..*cfg };
                    let cands = candidate_indices(info.frames, &cfg)?;
                    let decoded = decode_frames(path, &info, &cands)?;
                    let mut picked = pollster::block_on(sample_frames(gpu, vggt, &decoded, &cands, &cfg))?;
                    if picked.len() % 2 == 1 {
                        picked.push(*picked.last().expect("one at least")); // temporal pairs
                    }
                    picked
                }
            };
            Ok((decode_frames(path, &info, &idx)?, idx))
        }
        Source::Images(files) => {
            let idx = if files.len() > n { linspace_trunc(files.len(), n) } else { (0..files.len()).collect() };
            let chosen: Vec<PathBuf> = idx.iter().map(|&i| files[i].clone()).collect();
            Ok((decode_images(&chosen)?, idx))
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

/// Refuse `--frames 0` as what it is, before any work: left to the sampler it would read as a
/// video without frames (a folder) or one too short for the count.
pub fn check_frames(n_frames: usize) -> NResult<()> {
    if n_frames == 0 {
        return Err(NativeError::ZeroFrames);
    }
    Ok(())
}

/// Sample, preprocess and encode `source`; `max_new_tokens` sizes the context. Without a spatial
/// encoder one image goes through Qwen2.5-VL's image path; otherwise images are a video's frames.
pub fn encode(gpu: &Gpu, m: &SpatialMllm, source: &Source, n_frames: usize, choice: &FrameChoice, max_new_tokens: usize) -> NResult<EncodedVideo> {
    check_frames(n_frames)?;
    let t0 = now_ms();
    if let Source::Images(files) = source {
        if files.len() == 1 && !m.has_spatial_encoder() {
            let raw = decode_images(files)?;
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
pub fn encode_frames(gpu: &Gpu, m: &SpatialMllm, raw: &RgbFrames, max_new_tokens: usize) -> NResult<EncodedVideo> {
    let t0 = now_ms();
    let prepared = prepare_video(raw, TorchFloat::Fma)?;
    let mut v = encode_prepared(gpu, m, &prepared, max_new_tokens)?;
    v.frames = (0..raw.count).collect();
    v.preprocess_ms = now_ms() - t0 - v.encode_ms;
    Ok(v)
}

/// Encode a preprocessed video (the frames as the processor receives them).
pub fn encode_prepared(gpu: &Gpu, m: &SpatialMllm, prepared: &PreparedVideo, max_new_tokens: usize) -> NResult<EncodedVideo> {
    let visual = Visual::Video { vit: &prepared.vit, vggt: prepared.vggt.as_frames() };
    let opened = pollster::block_on(open_session(gpu, m, visual, max_new_tokens, None))?;
    let frames = (0..prepared.frames.count).collect();
    Ok(EncodedVideo {
        session: opened.session,
        input: "video",
        frames,
        frame_size: (prepared.frames.width, prepared.frames.height),
        preprocess_ms: 0.0,
        encode_ms: opened.encode_ms,
    })
}

/// Preprocess (the HF image processor: its budget, Pillow's bicubic) and encode one image.
pub fn encode_image(gpu: &Gpu, m: &SpatialMllm, raw: &RgbFrames, max_new_tokens: usize) -> NResult<EncodedVideo> {
    let t0 = now_ms();
    let prepared = prepare_image(raw, PilPassOrder::default())?;
    let preprocess_ms = now_ms() - t0;
    let opened = pollster::block_on(open_session(gpu, m, Visual::Image(&prepared.vit), max_new_tokens, None))?;
    Ok(EncodedVideo {
        session: opened.session,
        input: "image",
        frames: vec![0],
        frame_size: (prepared.image.width, prepared.image.height),
        preprocess_ms,
        encode_ms: opened.encode_ms,
    })
}

impl EncodedVideo {
    /// A session with no visual block, for text-only questions.
    pub fn text_only(gpu: &Gpu, m: &SpatialMllm, max_new_tokens: usize) -> NResult<EncodedVideo> {
        let opened = pollster::block_on(open_session(gpu, m, Visual::Text, max_new_tokens, None))?;
        Ok(EncodedVideo { session: opened.session, input: "text", frames: vec![], frame_size: (0, 0), preprocess_ms: 0.0, encode_ms: 0.0 })
    }

    /// The session the questions go to (its prompts, its last prefill).
    pub fn session(&self) -> &VideoSession {
        &self.session
    }

    /// Ask `question`; `on_text` receives the reply piece by piece (whole UTF-8 characters).
    pub fn ask(&mut self, gpu: &Gpu, m: &SpatialMllm, tok: &QwenTokenizer, question: &str, gen: &GenerationConfig, on_text: &mut dyn FnMut(&str)) -> NResult<Reply> {
        Ok(pollster::block_on(self.session.answer(gpu, m, tok, question, gen, on_text, &|| false))?)
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
) -> NResult<Answer> {
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
