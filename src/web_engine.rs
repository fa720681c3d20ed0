//! The engine as the web app uses it (issue 7's engine side): load a Spatial-MLLM or plain
//! Qwen2.5-VL package by URL (and optionally a VGGT package for space-aware frame sampling, on the
//! same GPU), pick frames, encode a video's frames once (RGBA from WebCodecs or a canvas), then ask
//! questions about it (or text-only questions, `text_session`), the reply streamed piece by piece.
//! The grid, the context and the session come from `model::spatial::pipeline`, as in the CLI.
//! State lives behind `Rc`s so that the promises JavaScript awaits own what they use; a question
//! asked while another runs is refused, not queued.
//!
//! Every rejection is a JS `Error` whose `name` says what kind of failure it is: `GpuDeviceLost`
//! (the device was lost or destroyed: make a new `Engine`), `GpuOutOfMemory` (out of GPU memory,
//! or work refused up front because a buffer would exceed the adapter's limits), `Busy` (a
//! question is still being answered), `BadInput` (frames, sizes, counts, a question that does not
//! fit), `PackageError` (download, integrity, a package of the wrong kind or that does not match
//! its config) or `EngineError` (anything else).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use js_sys::{Float32Array, Function, Object, Promise, Reflect, Uint16Array, Uint32Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::gpu::clock::now_ms;
use crate::gpu::{Gpu, GpuError, GpuOptions};
use crate::model::qwen::chat::QwenTokenizer;
use crate::model::qwen::DecodeSteps;
use crate::model::qwen::generate::GenerationConfig;
use crate::model::spatial::frame_sampler::{candidate_indices as sampler_candidates, sample_scene, vggt_frame_size, SamplerConfig, MAX_SCENE_POINTS};
use crate::model::spatial::memory;
use crate::model::spatial::{open_session, SpatialMllm, VideoSession, Visual};
use crate::model::vggt::Vggt;
use crate::model::ModelError;
use crate::preprocess::{prepare_video, qwen_video_input, vggt_input, video_frame_size, PreprocessError, RgbFrames, TorchFloat};
use crate::weights::layout::ModelKind;
use crate::weights::{Manifest, PackageError};

pub const DEVICE_LOST: &str = "GpuDeviceLost";
pub const OUT_OF_MEMORY: &str = "GpuOutOfMemory";
pub const BUSY: &str = "Busy";
pub const BAD_INPUT: &str = "BadInput";
pub const PACKAGE: &str = "PackageError";
pub const ENGINE: &str = "EngineError";

/// A failure on its way to JavaScript: the `Error`'s name and message.
#[derive(Debug)]
pub struct Fail {
    pub name: &'static str,
    pub msg: String,
}

impl Fail {
    pub fn new(name: &'static str, msg: impl std::fmt::Display) -> Fail {
        Fail { name, msg: msg.to_string() }
    }

    fn gpu_name(e: &GpuError) -> &'static str {
        match e {
            GpuError::DeviceLost(_) => DEVICE_LOST,
            GpuError::OutOfMemory(_) | GpuError::BindingTooLarge { .. } | GpuError::WorkTooLarge { .. } => OUT_OF_MEMORY,
            _ => ENGINE,
        }
    }
}

impl From<GpuError> for Fail {
    fn from(e: GpuError) -> Fail {
        Fail::new(Fail::gpu_name(&e), e)
    }
}

impl From<ModelError> for Fail {
    fn from(e: ModelError) -> Fail {
        let name = match &e {
            ModelError::Gpu(g) => Fail::gpu_name(g),
            ModelError::Input(_) => BAD_INPUT,
            ModelError::MissingParam(_) | ModelError::ParamShape { .. } | ModelError::Config(_) | ModelError::Tokenizer(_) => PACKAGE,
            ModelError::Cancelled => ENGINE,
        };
        Fail::new(name, e)
    }
}

impl From<PackageError> for Fail {
    fn from(e: PackageError) -> Fail {
        let name = match &e {
            PackageError::Gpu(g) => Fail::gpu_name(g),
            _ => PACKAGE,
        };
        Fail::new(name, e)
    }
}

impl From<PreprocessError> for Fail {
    fn from(e: PreprocessError) -> Fail {
        Fail::new(BAD_INPUT, e)
    }
}

impl From<Fail> for JsValue {
    fn from(f: Fail) -> JsValue {
        let e = js_sys::Error::new(&f.msg);
        e.set_name(f.name);
        e.into()
    }
}

/// The device-lost failure of `gpu` (with the reason it reported).
fn lost(gpu: &Gpu) -> Fail {
    match gpu.check() {
        Err(e @ GpuError::DeviceLost(_)) => e.into(),
        _ => GpuError::DeviceLost("reason unknown".into()).into(),
    }
}

/// Run `work` as a promise on `gpu`: refused at once when the device is lost, and any failure
/// while the device is lost is reported as the loss (its cause), whatever surfaced first.
fn run<F>(gpu: Rc<Loaded>, work: F) -> Promise
where
    F: Future<Output = Result<JsValue, Fail>> + 'static,
{
    future_to_promise(async move {
        let r = if gpu.gpu.is_lost() { Err(lost(&gpu.gpu)) } else { work.await };
        r.map_err(|e| if e.name != DEVICE_LOST && gpu.gpu.is_lost() { lost(&gpu.gpu) } else { e }.into())
    })
}

/// What the page shows of a device (www/engine/device-line.js turns it into a sentence):
/// {description, cpu, f16, subgroups, activations, maxBindingBytes, gemmTiling, gemmTilingSource,
/// attentionKernel, attentionKernelSource, attentionKernelDetail (a sentence with the measured
/// times), decodeKernels}.
pub(crate) fn device_facts(gpu: &Gpu) -> Object {
    let (info, o) = (&gpu.info, Object::new());
    set(&o, "description", &info.name.as_str().into());
    set(&o, "cpu", &(info.device_type == "Cpu").into());
    set(&o, "f16", &info.has_f16.into());
    set(&o, "subgroups", &info.has_subgroups.into());
    set(&o, "activations", &format!("{:?}", gpu.act).to_lowercase().into());
    set(&o, "maxBindingBytes", &(gpu.max_buffer_bytes() as f64).into());
    let gemm = gpu.gemm_choice();
    set(&o, "gemmTiling", &gemm.tile.to_string().into());
    set(&o, "gemmTilingSource", &format!("{:?}", gemm.source).to_lowercase().into());
    let attention = gpu.attention_pick();
    set(&o, "attentionKernel", &attention.kernel.to_string().into());
    set(&o, "attentionKernelSource", &format!("{:?}", attention.source).to_lowercase().into());
    set(&o, "attentionKernelDetail", &crate::kernels::attention::encoder_kernel(gpu).into());
    set(&o, "decodeKernels", &crate::model::qwen::DecodeKernels::for_adapter(gpu).name().into());
    o
}

fn set(o: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(o, &JsValue::from_str(key), value);
}

/// `load_package`'s progress callback: (shard, shards, bytes done, bytes total, from cache).
fn progress_fn(on_progress: Option<Function>) -> impl FnMut(usize, usize, u64, u64, bool) {
    move |i, n, done, total, cached| {
        if let Some(f) = &on_progress {
            let args = js_sys::Array::of5(&(i as f64).into(), &(n as f64).into(), &(done as f64).into(), &(total as f64).into(), &cached.into());
            let _ = f.apply(&JsValue::NULL, &args);
        }
    }
}

fn want_kind(url: &str, wanted: &str, ok: impl Fn(Option<ModelKind>) -> bool) -> impl Fn(&Manifest) -> Result<(), PackageError> {
    let (url, wanted) = (url.to_string(), wanted.to_string());
    move |m: &Manifest| {
        if ok(ModelKind::from_id(&m.model_kind)) {
            Ok(())
        } else {
            Err(PackageError::WrongKind { url: url.clone(), found: m.model_kind.clone(), wanted: wanted.clone() })
        }
    }
}

fn sampler_config(fast: bool) -> SamplerConfig {
    if fast {
        SamplerConfig::fast()
    } else {
        SamplerConfig::full()
    }
}

struct Loaded {
    gpu: Gpu,
    model: SpatialMllm,
    tok: QwenTokenizer,
}

/// A loaded model on this browser's GPU (and, after `load_sampler`, VGGT on the same device).
#[wasm_bindgen]
pub struct Engine {
    inner: Rc<Loaded>,
    sampler: Rc<RefCell<Option<Rc<Vggt>>>>,
    /// The model load's `LoadReport` as JSON (from cache or network, damaged entries replaced,
    /// a cache warning such as a full quota).
    report: String,
}

async fn load_engine(base_url: String, on_progress: Option<Function>, max_binding_bytes: Option<f64>) -> Result<Engine, Fail> {
    let mut gpu = Gpu::new(GpuOptions::default()).await?;
    if let Some(b) = max_binding_bytes.filter(|b| *b >= 1.0) {
        gpu.limit_binding(b as u64);
    }
    // The GEMM core's tiling and the attention kernel, measured on this adapter's first visit.
    crate::web_tuning_store::tune_device(&gpu).await?;
    let mut progress = progress_fn(on_progress);
    let accept = want_kind(&base_url, "a Spatial-MLLM model (spatial-mllm-v1.0 or spatial-mllm-v1.1) or a Qwen2.5-VL model (qwen2.5-vl)", |k| {
        matches!(k, Some(ModelKind::SpatialMllmV10 | ModelKind::SpatialMllmV11 | ModelKind::QwenVl))
    });
    let (manifest, params, report) = crate::weights::http::load_checked(&gpu, &base_url, &accept, &mut progress).await?;
    let tok_file = manifest.tokenizer.clone().ok_or_else(|| Fail::new(PACKAGE, "the package has no tokenizer.json: convert the checkpoint with its tokenizer"))?;
    let tok = crate::weights::http::file_parsed(&base_url, &tok_file, QwenTokenizer::from_bytes).await??;
    let params = crate::model::Params::new(params);
    let mut model = SpatialMllm::new(&gpu, &manifest.model_kind, &manifest.config, &params).await?;
    tok.check_config(&model.cfg.tokens)?;
    // The decode step's kernels, measured on this GPU's first load of a model of this shape.
    crate::web_tuning_store::tune(&mut DecodeSteps::new(&mut model.text), &gpu).await?;
    gpu.check()?;
    let report = serde_json::to_string(&report).expect("report serialises");
    Ok(Engine { inner: Rc::new(Loaded { gpu, model, tok }), sampler: Rc::new(RefCell::new(None)), report })
}

#[wasm_bindgen]
impl Engine {
    /// Load the package at `base_url` (Cache Storage first, then the network); `on_progress` as
    /// `load_package`'s. `max_binding_bytes` plans for a smaller GPU than this one (a lower
    /// binding limit: work beyond it is refused as out of memory). Resolves to an `Engine`.
    pub fn load(base_url: String, on_progress: Option<Function>, max_binding_bytes: Option<f64>) -> Promise {
        future_to_promise(async move { Ok(load_engine(base_url, on_progress, max_binding_bytes).await?.into()) })
    }

    /// Load a VGGT package (aggregator, point head, and the camera / depth heads it has) for
    /// `sample`, on this engine's GPU. Resolves to undefined.
    pub fn load_sampler(&self, vggt_url: String, on_progress: Option<Function>) -> Promise {
        let (inner, slot) = (self.inner.clone(), self.sampler.clone());
        run(inner.clone(), async move {
            let gpu = &inner.gpu;
            let mut progress = progress_fn(on_progress);
            let accept = want_kind(&vggt_url, "a VGGT model (vggt)", |k| k == Some(ModelKind::Vggt));
            let (manifest, params, _) = crate::weights::http::load_checked(gpu, &vggt_url, &accept, &mut progress).await?;
            let params = crate::model::Params::new(params);
            let vggt = Vggt::new(gpu, &manifest.model_kind, &manifest.config, &params).await?;
            if vggt.point.is_none() {
                return Err(Fail::new(
                    PACKAGE,
                    format!("the VGGT package at {vggt_url} has no point head, which frame sampling needs: convert the full VGGT checkpoint"),
                ));
            }
            gpu.check()?;
            *slot.borrow_mut() = Some(Rc::new(vggt));
            Ok(JsValue::UNDEFINED)
        })
    }

    /// What loading the model did, as JSON: `weights::http::LoadReport` (shards from the cache or
    /// the network, resumes, damaged cache entries replaced, a cache warning such as a full quota).
    pub fn load_report(&self) -> String {
        self.report.clone()
    }

    /// The loaded model's kind: "spatial-mllm-v1.0", "spatial-mllm-v1.1" or "qwen2.5-vl".
    pub fn model_kind(&self) -> String {
        self.inner.model.kind.id().to_string()
    }

    /// Whether the model has the spatial encoder (VGGT + connector); false for a plain
    /// Qwen2.5-VL, whose videos are encoded by the ViT alone.
    pub fn has_spatial_encoder(&self) -> bool {
        self.inner.model.has_spatial_encoder()
    }

    /// Whether a frame sampler is loaded.
    pub fn has_sampler(&self) -> bool {
        self.sampler.borrow().is_some()
    }

    /// The adapter and the precision path, as text (for developers; the app's sentence is built
    /// from `device_facts` in www/engine/device-line.js).
    pub fn device(&self) -> String {
        format!("{} ({:?} activations)", self.inner.gpu.info, self.inner.gpu.act)
    }

    /// What the engine negotiated, for a sentence a person can read: `{description, cpu, f16,
    /// subgroups, activations: "f16" | "f32", maxBindingBytes}` (`cpu`: a software adapter).
    pub fn device_facts(&self) -> Object {
        let o = device_facts(&self.inner.gpu);
        // The loaded model's decode plan (measured on a GPU) rather than the adapter's default.
        let text = &self.inner.model.text;
        set(&o, "decodeKernels", &text.decode.to_string().into());
        set(&o, "decodeKernelsSource", &format!("{:?}", text.decode_source).to_lowercase().into());
        o
    }

    /// The largest buffer the device can bind, in bytes (what `estimate_memory`'s
    /// `largest_buffer_bytes` must not exceed).
    pub fn max_buffer_bytes(&self) -> f64 {
        self.inner.gpu.max_buffer_bytes() as f64
    }

    /// Space-aware frame sampling: `rgba` holds `count` candidate frames of `width` x `height`
    /// (decoded at `candidate_indices(total, fast)`, in order). Picks `k` (all if fewer). Resolves
    /// to `{selected: Uint32Array, points: Float32Array, colors: Uint8Array, point_frame:
    /// Uint16Array, cameras: Float32Array, vggt_ms, total_ms}`; `on_stage(name)` hears
    /// "sampling: VGGT" and "sampling: selection".
    #[allow(clippy::too_many_arguments)]
    pub fn sample(&self, rgba: Vec<u8>, count: usize, width: usize, height: usize, k: usize, fast: bool, on_stage: Option<Function>) -> Promise {
        let (inner, slot) = (self.inner.clone(), self.sampler.clone());
        run(inner.clone(), async move {
            let t0 = now_ms();
            let gpu = &inner.gpu;
            let vggt = slot.borrow().clone().ok_or_else(|| Fail::new(BAD_INPUT, "no frame sampler is loaded: call load_sampler(url) with a VGGT package first"))?;
            let frames = RgbFrames::from_rgba(count, height, width, &rgba)?;
            drop(rgba);
            let mut cfg = sampler_config(fast);
            cfg.k = k;
            let (h, w) = vggt_frame_size(height, width, cfg.width);
            memory::sampler_activations(&vggt.aggregator.dims, count, h, w, gpu.act.size()).check(gpu.max_buffer_bytes())?;
            let mut stage = |name: &str| {
                if let Some(f) = &on_stage {
                    let _ = f.call1(&JsValue::NULL, &JsValue::from_str(name));
                }
            };
            let scene = sample_scene(gpu, &vggt, &frames, &cfg, MAX_SCENE_POINTS, &mut stage).await?;
            let o = Object::new();
            let selected: Vec<u32> = scene.selection.indices.iter().map(|&i| i as u32).collect();
            set(&o, "selected", &Uint32Array::from(&selected[..]).into());
            set(&o, "points", &Float32Array::from(&scene.points[..]).into());
            set(&o, "colors", &Uint8Array::from(&scene.colors[..]).into());
            set(&o, "point_frame", &Uint16Array::from(&scene.point_frame[..]).into());
            set(&o, "cameras", &Float32Array::from(&scene.cameras[..]).into());
            set(&o, "vggt_ms", &scene.vggt_ms.into());
            set(&o, "total_ms", &(now_ms() - t0).into());
            Ok(o.into())
        })
    }

    /// Encode `count` RGBA frames of `width` x `height` (the sampled frames, in order). With
    /// `resize`, they are resized as qwen-vl-utils does for this many frames; without, they must
    /// already be a multiple of 28 on each side. Resolves to a `Video`; `max_new_tokens` sizes its
    /// context. `on_stage(name, ms)` hears "ViT", "VGGT", "connector" (only "ViT" without the
    /// spatial encoder) as each stage starts and "done" at the end, with the milliseconds of the
    /// stage before (for "ViT": the CPU preprocessing). Work whose largest buffer exceeds the device's limit is refused first.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_video(
        &self,
        rgba: Vec<u8>,
        count: usize,
        width: usize,
        height: usize,
        resize: bool,
        max_new_tokens: usize,
        on_stage: Option<Function>,
    ) -> Promise {
        let inner = self.inner.clone();
        run(inner.clone(), async move {
            let l = &*inner;
            let mut last = now_ms();
            let frames = RgbFrames::from_rgba(count, height, width, &rgba)?;
            drop(rgba);
            // Refuse what cannot fit before any work (the size the frames will have, odd counts padded).
            let padded = count.next_multiple_of(2);
            let (h, w) = if resize { video_frame_size(height, width, padded)? } else { (height, width) };
            let dims = l.model.spatial.as_ref().map(|s| &s.aggregator.dims);
            let est = memory::video_activations(&l.model.cfg, dims, padded, h, w, l.gpu.act.size());
            est.check(l.gpu.max_buffer_bytes())?;
            let (vit, vggt) = if resize {
                let p = prepare_video(&frames, TorchFloat::Fma)?;
                (p.vit, p.vggt)
            } else {
                (qwen_video_input(&frames)?, vggt_input(&frames))
            };
            drop(frames);
            let mut stage = |name: &str| {
                let now = now_ms();
                if let Some(f) = &on_stage {
                    let _ = f.call2(&JsValue::NULL, &JsValue::from_str(name), &(now - last).into());
                }
                last = now;
            };
            let visual = Visual::Video { vit: &vit, vggt: vggt.as_frames() };
            let session = open_session(&l.gpu, &l.model, visual, max_new_tokens, Some(&mut stage)).await?.session;
            l.gpu.check()?;
            stage("done");
            Ok(Video::new(inner.clone(), session).into())
        })
    }

    /// A session without a video, for text-only questions (the chat template with no visual
    /// block); resolves to a `Video` whose `tokens()` is 0. `max_new_tokens` sizes its context.
    pub fn text_session(&self, max_new_tokens: usize) -> Promise {
        let inner = self.inner.clone();
        run(inner.clone(), async move {
            let session = open_session(&inner.gpu, &inner.model, Visual::Text, max_new_tokens, None).await?.session;
            inner.gpu.check()?;
            Ok(Video::new(inner.clone(), session).into())
        })
    }

    /// Destroy the GPU device (a test hook for the app's recovery path): from now on every call
    /// rejects with `GpuDeviceLost`.
    pub fn lose_device(&self) {
        self.inner.gpu.destroy();
    }

    /// Whether the device was lost (or destroyed): the engine must be loaded again.
    pub fn is_lost(&self) -> bool {
        self.inner.gpu.is_lost()
    }

    /// What the engine holds, by its own count (a long session's memory record, `Gpu::memory`):
    /// `{pool_bytes, pooled_bytes, owned_bytes, bind_groups, pipelines, wasm_bytes}`: the buffer
    /// pool's buffers alive (in use and kept for reuse), of them the ones kept for reuse, the
    /// buffers outside the pool (weights), cached bind groups, compiled pipelines, and the wasm
    /// module's linear memory (which only grows).
    pub fn memory(&self) -> Object {
        let m = self.inner.gpu.memory();
        let o = Object::new();
        set(&o, "pool_bytes", &(m.pool_bytes as f64).into());
        set(&o, "pooled_bytes", &(m.pooled_bytes as f64).into());
        set(&o, "owned_bytes", &(m.owned_bytes as f64).into());
        set(&o, "bind_groups", &(m.bind_groups as f64).into());
        set(&o, "pipelines", &(m.pipelines as f64).into());
        set(&o, "wasm_bytes", &(wasm_memory_bytes() as f64).into());
        o
    }
}

/// The wasm module's linear memory in bytes (0 natively, where this module is only type-checked).
fn wasm_memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size::<0>() * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

/// The last answer's numbers.
#[derive(Clone, Copy, Default)]
struct AskStats {
    prompt_tokens: usize,
    prefilled_tokens: usize,
    prefill_ms: f64,
    new_tokens: usize,
    decode_ms: f64,
}

/// An encoded video (or a text-only session): questions run only the language model.
#[wasm_bindgen]
pub struct Video {
    engine: Rc<Loaded>,
    session: Rc<RefCell<VideoSession>>,
    cancel: Rc<Cell<bool>>,
    stats: Rc<Cell<AskStats>>,
    tokens: usize,
}

impl Video {
    fn new(engine: Rc<Loaded>, session: VideoSession) -> Video {
        let tokens = session.visual_tokens();
        Video { engine, session: Rc::new(RefCell::new(session)), cancel: Rc::new(Cell::new(false)), stats: Rc::new(Cell::new(AskStats::default())), tokens }
    }
}

#[wasm_bindgen]
impl Video {
    /// Ask `question` (greedy, stopping at the end of the turn). `on_piece(text)` receives the
    /// reply as it streams; resolves to the whole reply. Refused (`Busy`) while another question
    /// about this video is being answered.
    pub fn ask(&self, question: String, max_new_tokens: usize, on_piece: Option<Function>) -> Promise {
        let (l, session, cancel, stats) = (self.engine.clone(), self.session.clone(), self.cancel.clone(), self.stats.clone());
        // The session stays borrowed across the awaits on purpose: that borrow is what refuses a
        // concurrent question (Busy).
        #[allow(clippy::await_holding_refcell_ref)]
        run(l.clone(), async move {
            let mut s = session.try_borrow_mut().map_err(|_| Fail::new(BUSY, "a question about this video is still being answered: wait for it or stop it"))?;
            cancel.set(false);
            let gen = GenerationConfig::greedy(max_new_tokens, l.model.cfg.tokens.eos.clone());
            let mut emit = |p: &str| {
                if let Some(f) = &on_piece {
                    let _ = f.call1(&JsValue::NULL, &JsValue::from_str(p));
                }
            };
            let r = s.answer(&l.gpu, &l.model, &l.tok, &question, &gen, &mut emit, &|| cancel.get()).await?;
            stats.set(AskStats {
                prompt_tokens: r.prompt_tokens,
                prefilled_tokens: r.prefilled_tokens,
                prefill_ms: r.prefill_ms,
                new_tokens: r.tokens.len(),
                decode_ms: r.decode_ms,
            });
            Ok(JsValue::from_str(&r.text))
        })
    }

    /// Stop the reply being generated (it resolves with what it has so far).
    pub fn stop(&self) {
        self.cancel.set(true);
    }

    /// The last answer's `{prompt_tokens, prefilled_tokens, prefill_ms, new_tokens, decode_ms}`
    /// (prefilled_tokens < prompt_tokens when the cached prompt prefix was reused; all 0 before
    /// the first answer).
    pub fn stats(&self) -> Object {
        let s = self.stats.get();
        let o = Object::new();
        set(&o, "prompt_tokens", &(s.prompt_tokens as f64).into());
        set(&o, "prefilled_tokens", &(s.prefilled_tokens as f64).into());
        set(&o, "prefill_ms", &s.prefill_ms.into());
        set(&o, "new_tokens", &(s.new_tokens as f64).into());
        set(&o, "decode_ms", &s.decode_ms.into());
        o
    }

    /// The video's visual tokens (what its block of the prompt holds; 0 without a video).
    pub fn tokens(&self) -> usize {
        self.tokens
    }
}

/// Which frames of a video of `total_frames` to decode as the sampler's candidates (full: up to
/// 128 for 518 px, fast: up to 32 for 224 px), ascending.
#[wasm_bindgen(js_name = candidate_indices)]
pub fn candidate_indices_js(total_frames: usize, fast: bool) -> Result<Vec<u32>, JsValue> {
    let idx = sampler_candidates(total_frames, &sampler_config(fast)).map_err(Fail::from)?;
    Ok(idx.into_iter().map(|i| i as u32).collect())
}

/// Memory a model package needs for `frames` frames of `width` x `height` px, from its manifest
/// alone (fetch `manifest.json` first: nothing is downloaded or put on a GPU):
/// `{weight_bytes, activation_bytes, largest_buffer_bytes, largest}` (`largest`: what the largest
/// buffer is). For a Spatial-MLLM or Qwen2.5-VL package the frames are what `encode_video` gets,
/// resized as it does unless `resize` is false; for a VGGT package they are the sampler's input
/// after its crop. `f16` (default true): the adapter has `shader-f16` (activations of 2 bytes, else 4).
#[wasm_bindgen]
pub fn estimate_memory(manifest_json: &str, frames: usize, width: usize, height: usize, f16: Option<bool>, resize: Option<bool>) -> Result<Object, JsValue> {
    let m = Manifest::parse(manifest_json, "manifest.json").map_err(Fail::from)?;
    let act = if f16.unwrap_or(true) { 2 } else { 4 };
    let e = memory::estimate_package(&m, frames, width, height, act, resize.unwrap_or(true)).map_err(Fail::from)?;
    let o = Object::new();
    set(&o, "weight_bytes", &(e.weight_bytes as f64).into());
    set(&o, "activation_bytes", &(e.activation_bytes as f64).into());
    set(&o, "largest_buffer_bytes", &(e.largest_buffer_bytes as f64).into());
    set(&o, "largest", &JsValue::from_str(&e.largest));
    Ok(o)
}
