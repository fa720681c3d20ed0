//! The engine as the web app uses it (issue 7's engine side): load a Spatial-MLLM package by URL,
//! encode a video's frames once (RGBA from WebCodecs or a canvas), then ask questions about it,
//! the reply streamed piece by piece. State lives behind `Rc`s so that the promises JavaScript
//! awaits own what they use; a question asked while another runs is refused, not queued.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::gpu::{Gpu, GpuOptions, Recorder};
use crate::model::qwen::chat::{QwenTokenizer, TextStream};
use crate::model::qwen::generate::GenerationConfig;
use crate::model::qwen::rope_index::VisionGrid;
use crate::model::qwen::vision_layout::Grid;
use crate::model::spatial::{SpatialMllm, VideoInput, VideoSession};
use crate::preprocess::{prepare_video, qwen_video_input, vggt_input, RgbFrames, TorchFloat};

fn js(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

struct Loaded {
    gpu: Gpu,
    model: SpatialMllm,
    tok: QwenTokenizer,
}

/// A loaded model on this browser's GPU.
#[wasm_bindgen]
pub struct Engine {
    inner: Rc<Loaded>,
}

#[wasm_bindgen]
impl Engine {
    /// Load the package at `base_url` (Cache Storage first, then the network); `on_progress` as
    /// `load_package`'s. Resolves to an `Engine`.
    pub fn load(base_url: String, on_progress: Option<Function>) -> Promise {
        future_to_promise(async move {
            let gpu = Gpu::new(GpuOptions::default()).await.map_err(js)?;
            let mut progress = |i: usize, n: usize, done: u64, total: u64, cached: bool| {
                if let Some(f) = &on_progress {
                    let args = js_sys::Array::of5(&(i as f64).into(), &(n as f64).into(), &(done as f64).into(), &(total as f64).into(), &cached.into());
                    let _ = f.apply(&JsValue::NULL, &args);
                }
            };
            let (manifest, params, _) = crate::weights::http::load(&gpu, &base_url, &mut progress).await.map_err(js)?;
            let tok_file = manifest.tokenizer.clone().ok_or_else(|| js("the package has no tokenizer.json"))?;
            let tok = QwenTokenizer::from_bytes(&crate::weights::http::file(&base_url, &tok_file).await.map_err(js)?).map_err(js)?;
            let params = crate::model::Params::new(params);
            let model = SpatialMllm::new(&gpu, &manifest.model_kind, &manifest.config, &params).await.map_err(js)?;
            tok.check_config(&model.cfg.tokens).map_err(js)?;
            Ok(Engine { inner: Rc::new(Loaded { gpu, model, tok }) }.into())
        })
    }

    /// The adapter and the precision path, as text.
    pub fn device(&self) -> String {
        format!("{} ({:?} activations)", self.inner.gpu.info, self.inner.gpu.act)
    }

    /// Encode `count` RGBA frames of `width` x `height` (the sampled frames, in order). With
    /// `resize`, they are resized as qwen-vl-utils does for this many frames; without, they must
    /// already be a multiple of 28 on each side. Resolves to a `Video`; `max_new_tokens` sizes its
    /// context.
    pub fn encode_video(&self, rgba: Vec<u8>, count: usize, width: usize, height: usize, resize: bool, max_new_tokens: usize) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let l = &*inner;
            let frames = RgbFrames::from_rgba(count, height, width, &rgba).map_err(js)?;
            let (vit, vggt) = if resize {
                let p = prepare_video(&frames, TorchFloat::Fma).map_err(js)?;
                (p.vit, p.vggt)
            } else {
                (qwen_video_input(&frames).map_err(js)?, vggt_input(&frames))
            };
            let g = vit.grid_thw;
            let grid = Grid { t: g[0], h: g[1], w: g[2] };
            let mut rec = Recorder::new(&l.gpu);
            let input = VideoInput { vit_patches: &vit.pixel_values, grid, frames: vggt.as_frames() };
            let visual = l.model.encode_video(&mut rec, &input, None).map_err(js)?;
            rec.submit().map_err(js)?;
            // qwen-vl-utils' default: 2 frames per temporal patch at 2 fps = 1 s per grid step.
            let vgrid = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: 1.0 };
            let capacity = visual.rows() + 512 + max_new_tokens;
            let session = VideoSession::new(&l.gpu, &l.model, visual, vgrid, capacity).map_err(js)?;
            Ok(Video { engine: inner.clone(), session: Rc::new(RefCell::new(session)), cancel: Rc::new(RefCell::new(false)) }.into())
        })
    }
}

/// An encoded video: questions about it run only the language model.
#[wasm_bindgen]
pub struct Video {
    engine: Rc<Loaded>,
    session: Rc<RefCell<VideoSession>>,
    cancel: Rc<RefCell<bool>>,
}

#[wasm_bindgen]
impl Video {
    /// Ask `question` (greedy, stopping at the end of the turn). `on_piece(text)` receives the
    /// reply as it streams; resolves to the whole reply.
    pub fn ask(&self, question: String, max_new_tokens: usize, on_piece: Option<Function>) -> Promise {
        let (l, session, cancel) = (self.engine.clone(), self.session.clone(), self.cancel.clone());
        future_to_promise(async move {
            let mut s = session.try_borrow_mut().map_err(|_| js("a question about this video is still being answered: wait for it or stop it"))?;
            *cancel.borrow_mut() = false;
            let gen = GenerationConfig::greedy(max_new_tokens, l.model.cfg.tokens.eos.clone());
            let mut stream = TextStream::new();
            let mut text = String::new();
            let mut on_token = |id: u32| {
                if let Ok(Some(p)) = stream.push(&l.tok, id) {
                    if let Some(f) = &on_piece {
                        let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&p));
                    }
                    text += &p;
                }
                !*cancel.borrow()
            };
            s.ask(&l.gpu, &l.model, &l.tok, &question, &gen, &mut on_token).await.map_err(js)?;
            if let Some(p) = stream.finish(&l.tok).map_err(js)? {
                if let Some(f) = &on_piece {
                    let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&p));
                }
                text += &p;
            }
            Ok(JsValue::from_str(&text))
        })
    }

    /// Stop the reply being generated (it resolves with what it has so far).
    pub fn stop(&self) {
        *self.cancel.borrow_mut() = true;
    }
}
