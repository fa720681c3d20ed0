//! The decode step's kernels for this device and model, by context length. Which of the folded,
//! fused and separate steps is fastest turns on the GPU (dispatch cost against arithmetic: the
//! separate kernels win on a CPU adapter, the fewest dispatches should on a GPU) and on the
//! context (the folded step reads W_q once per key range), so a model measures them once per
//! device at two contexts, a short question's and a video's, and runs each context band with its
//! winner; the choice is remembered in the tuning store (`kernels::tuning_memo`) keyed by the
//! device and the model's shape and formats. `SPATIAL_MLLM_DECODE` or a test setting
//! `TextModel::decode` skips the measurement. So does a CPU adapter (lavapipe, SwiftShader): the
//! separate step wins there by far (1.8 against 3.2 s a token at the 3B width on lavapipe) and
//! measuring a real model would take minutes; tests measure there with `DecodeSteps::even_on_cpu`.

use super::decode_plan::{DecodeKernels, DecodePlan};
use super::kv_cache::KvCache;
use super::text::TextModel;
use crate::gpu::{Gpu, GpuError, Recorder, Result, Tensor, TileSource};
use crate::kernels::measure::fastest;
use crate::kernels::tuning_memo::{source_hash, Tuned};
use crate::model::ModelError;

/// The contexts measured: a question about an image or a short text, and one after a video's
/// prompt (16 frames).
pub const MEASURED_CONTEXTS: [usize; 2] = [256, 3072];

/// A model's decode plan, how it was decided, and the measurements: (context, kernels, ms a step).
#[derive(Clone, Debug)]
pub struct DecodeChoice {
    pub plan: DecodePlan,
    pub source: TileSource,
    pub timings: Vec<(usize, DecodeKernels, f64)>,
}

impl std::fmt::Display for DecodeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?}", self.plan, self.source)?;
        for (ctx, k, ms) in &self.timings {
            write!(f, "; {} at {ctx}: {ms:.2} ms", k.name())?;
        }
        write!(f, ")")
    }
}

impl TextModel {
    /// The kernels a decode step can choose between on this device, the adapter's default first:
    /// those the model's shapes allow, each once.
    pub fn decode_candidates(&self, gpu: &Gpu) -> Vec<DecodeKernels> {
        let mut out: Vec<DecodeKernels> = Vec::new();
        for k in std::iter::once(DecodeKernels::for_adapter(gpu)).chain(DecodeKernels::ALL) {
            let k = self.step_kernels(1, k);
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// The plan as it stands (nothing measured).
    pub fn decode_choice(&self) -> DecodeChoice {
        DecodeChoice { plan: self.decode, source: self.decode_source, timings: vec![] }
    }
}

/// A model's decode step, measured on a device (`Tuned`, for the tuning store).
pub struct DecodeSteps<'a> {
    model: &'a mut TextModel,
    on_cpu: bool,
}

impl<'a> DecodeSteps<'a> {
    /// Measured on a GPU; a CPU adapter keeps its default.
    pub fn new(model: &'a mut TextModel) -> Self {
        DecodeSteps { model, on_cpu: false }
    }

    /// Measured on any adapter (tests on lavapipe).
    pub fn even_on_cpu(model: &'a mut TextModel) -> Self {
        DecodeSteps { model, on_cpu: true }
    }
}

impl Tuned for DecodeSteps<'_> {
    const WHAT: &'static str = "decode kernels";
    type Choice = DecodeChoice;

    fn key_tail(&self, gpu: &Gpu) -> String {
        let c = &self.model.cfg;
        let candidates: Vec<&str> = self.model.decode_candidates(gpu).iter().map(|k| k.name()).collect();
        let kernels = [crate::kernels::MATMUL_WGSL.code, crate::kernels::ATTENTION_WGSL.code].concat();
        format!(
            "decode kernels {} at {MEASURED_CONTEXTS:?} | text model: hidden {}, {} layers, {}/{} heads of {}, vocab {} | {} | kernels {}",
            candidates.join(","),
            c.hidden,
            c.layers,
            c.heads,
            c.kv_heads,
            c.head_dim,
            c.vocab,
            self.model.weight_formats(),
            source_hash(&kernels)
        )
    }

    fn needs_measuring(&self, gpu: &Gpu) -> bool {
        self.model.decode_source == TileSource::Default && self.model.decode_candidates(gpu).len() > 1 && !gpu.is_dry_run() && (self.on_cpu || !is_cpu(gpu))
    }

    fn recall(&mut self, gpu: &Gpu, text: &str) -> bool {
        let candidates = self.model.decode_candidates(gpu);
        let Some(plan) = DecodePlan::parse(text).filter(|p| candidates.contains(&p.short) && candidates.contains(&p.long)) else {
            return false;
        };
        (self.model.decode, self.model.decode_source) = (plan, TileSource::Remembered);
        true
    }

    fn remember(&self, c: &DecodeChoice) -> Option<String> {
        (c.source == TileSource::Measured).then(|| c.plan.to_string())
    }

    async fn tune(&mut self, gpu: &Gpu) -> Result<DecodeChoice> {
        if !self.needs_measuring(gpu) {
            return Ok(self.model.decode_choice());
        }
        tune_decode(gpu, self.model).await
    }
}

fn is_cpu(gpu: &Gpu) -> bool {
    gpu.info.device_type == "Cpu"
}

/// The model's decode plan: measured now unless already decided (remembered, set in the
/// environment or by hand) or there is nothing to choose (on any adapter: `DecodeSteps` keeps
/// CPU adapters out).
pub async fn tune_decode(gpu: &Gpu, model: &mut TextModel) -> Result<DecodeChoice> {
    let candidates = model.decode_candidates(gpu);
    if model.decode_source != TileSource::Default || candidates.len() < 2 || gpu.is_dry_run() {
        return Ok(model.decode_choice());
    }
    let mut best = [candidates[0]; 2];
    let mut timings = Vec::new();
    for (band, ctx) in MEASURED_CONTEXTS.into_iter().enumerate() {
        let m = &*model;
        let found = fastest(gpu, "decode kernels", &candidates, &[ctx], |gpu, ctx| Step::new(gpu, m, ctx), |rec, k, step| step.record(rec, m, k)).await?;
        best[band] = found.best;
        timings.extend(found.timings.into_iter().map(|(k, ms)| (ctx, k, ms)));
    }
    (model.decode, model.decode_source) = (DecodePlan { short: best[0], long: best[1] }, TileSource::Measured);
    let c = DecodeChoice { plan: model.decode, source: model.decode_source, timings };
    log::info!("decode kernels {c}");
    Ok(c)
}

/// One decode step's inputs after `ctx` cached tokens (zeros: the time does not depend on the
/// values); every run writes the same cache slot.
struct Step {
    ctx: usize,
    x: Tensor,
    pos: Tensor,
    cache: std::cell::RefCell<KvCache>,
}

impl Step {
    fn new(gpu: &Gpu, m: &TextModel, ctx: usize) -> Result<Step> {
        let cache = KvCache::new(gpu, &m.cfg, ctx + 1).map_err(gpu_error)?;
        let x = gpu.upload_act(&vec![0.0; m.cfg.hidden], &[1, m.cfg.hidden])?;
        let pos = gpu.upload_i32(&[ctx as i32; 3], &[1, 3])?;
        Ok(Step { ctx, x, pos, cache: std::cell::RefCell::new(cache) })
    }

    fn record(&self, rec: &mut Recorder, m: &TextModel, kernels: DecodeKernels) -> Result<()> {
        let mut cache = self.cache.borrow_mut();
        cache.len = self.ctx;
        m.decode_logits_with(rec, self.x.clone(), &self.pos, &mut cache, kernels).map_err(gpu_error)?;
        Ok(())
    }
}

/// A model error in a measured step, as the device's error (the step's shapes are the model's
/// own, so only the device fails it).
fn gpu_error(e: ModelError) -> GpuError {
    match e {
        ModelError::Gpu(g) => g,
        e => GpuError::Validation(e.to_string()),
    }
}
