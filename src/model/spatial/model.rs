//! The whole model: load from a package, encode a video once (ViT + VGGT + connector → fused
//! visual tokens), build the prompt embeddings, generate.

use super::connector::{Connector, Generation};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::qwen::vision_layout::Grid;
use crate::model::qwen::{QwenConfig, TextModel, VisionModel};
use crate::model::vggt::{Aggregator, AggregatorOutput, AggregatorTaps, Frames};
use crate::model::{MResult, ModelError, Params};
use crate::weights::layout::ModelKind;
use crate::weights::shapes::VggtDims;

/// One video, preprocessed: the ViT's patches (processor order) with their grid, and the same
/// frames for VGGT as [frames, 3, H, W] in [0, 1].
pub struct VideoInput<'a> {
    pub vit_patches: &'a [f32],
    pub grid: Grid,
    pub frames: Frames<'a>,
}

/// Intermediate outputs for parity tests.
#[derive(Default)]
pub struct VisualTaps {
    pub vit: Option<Tensor>,
    pub aggregator: AggregatorTaps,
    pub spatial: Option<Tensor>,
}

pub struct SpatialMllm {
    pub cfg: QwenConfig,
    pub generation: Generation,
    pub text: TextModel,
    pub vision: VisionModel,
    pub aggregator: Aggregator,
    pub connector: Connector,
}

impl SpatialMllm {
    /// Build from a loaded package of a Spatial-MLLM kind (a clear error for any other kind).
    pub async fn new(gpu: &Gpu, kind: &str, config: &serde_json::Value, params: &Params) -> MResult<SpatialMllm> {
        let (mk, generation) = match ModelKind::from_id(kind) {
            Some(k @ ModelKind::SpatialMllmV10) => (k, Generation::V10),
            Some(k @ ModelKind::SpatialMllmV11) => (k, Generation::V11),
            _ => {
                return Err(ModelError::Config(format!(
                    "a package of kind {kind:?} is not a Spatial-MLLM checkpoint (spatial-mllm-v1.0 or spatial-mllm-v1.1)"
                )))
            }
        };
        let cfg = QwenConfig::from_json(config)?;
        let dims = VggtDims::from_config(mk, config);
        let channels = 2 * dims.dim;
        Ok(SpatialMllm {
            text: TextModel::new(gpu, &cfg.text, params)?,
            vision: VisionModel::new(gpu, &cfg.vision, params)?,
            aggregator: Aggregator::new(gpu, dims, params).await?,
            connector: Connector::new(gpu, params, generation, channels, cfg.text.hidden)?,
            generation,
            cfg,
        })
    }

    /// Fused visual tokens [t · h/2 · w/2, hidden] of one video; run once per video (prefill),
    /// never per decoded token.
    pub fn encode_video(&self, rec: &mut Recorder, v: &VideoInput, mut taps: Option<&mut VisualTaps>) -> MResult<Tensor> {
        self.check_video(v)?;
        let vit = self.vision.forward(rec, v.vit_patches, &[v.grid], None)?;
        let out = self.vggt_features(rec, &v.frames, taps.as_deref_mut().map(|t| &mut t.aggregator))?;
        let spatial = self.spatial_embeddings(rec, &out)?;
        if let Some(t) = taps {
            t.vit = Some(vit.clone());
            t.spatial = Some(spatial.clone());
        }
        self.connector.fuse(rec, &vit, &spatial)
    }

    /// `encode_video` one stage at a time, each submitted and finished on the GPU before the
    /// next starts, so that the times between `on_stage` calls ("ViT", "VGGT", "connector", each
    /// at its start) are the stages' own.
    pub async fn encode_video_staged(&self, gpu: &Gpu, v: &VideoInput<'_>, on_stage: &mut dyn FnMut(&str)) -> MResult<Tensor> {
        self.check_video(v)?;
        on_stage("ViT");
        let mut rec = Recorder::new(gpu);
        let vit = self.vision.forward(&mut rec, v.vit_patches, &[v.grid], None)?;
        rec.submit()?;
        gpu.finish().await?;
        on_stage("VGGT");
        let mut rec = Recorder::new(gpu);
        let out = self.vggt_features(&mut rec, &v.frames, None)?;
        rec.submit()?;
        gpu.finish().await?;
        on_stage("connector");
        let mut rec = Recorder::new(gpu);
        let spatial = self.spatial_embeddings(&mut rec, &out)?;
        drop(out);
        let fused = self.connector.fuse(&mut rec, &vit, &spatial)?;
        rec.submit()?;
        gpu.finish().await?;
        Ok(fused)
    }

    /// Both encoders must see the same frames, in temporal pairs.
    fn check_video(&self, v: &VideoInput) -> MResult<()> {
        let (g, f) = (v.grid, &v.frames);
        let p = self.aggregator.dims.patch;
        if f.count != g.t * self.cfg.vision.temporal_patch || f.height != g.h * p || f.width != g.w * p {
            return Err(ModelError::Input(format!(
                "the ViT grid {}x{}x{} and VGGT's {} frames of {}x{} px do not describe the same video (both encoders must see the same frames)",
                g.t, g.h, g.w, f.count, f.width, f.height
            )));
        }
        if f.count % 2 != 0 {
            return Err(ModelError::Input(format!("{} frames: Spatial-MLLM needs an even frame count (temporal pairs)", f.count)));
        }
        Ok(())
    }

    /// The aggregator's output that the connector reads (its last layer).
    fn vggt_features(&self, rec: &mut Recorder, f: &Frames, taps: Option<&mut AggregatorTaps>) -> MResult<AggregatorOutput> {
        let last = self.aggregator.dims.depth - 1;
        self.aggregator.forward(rec, f, &[last], taps)
    }

    /// The spatial embeddings e3D of the aggregator's output.
    fn spatial_embeddings(&self, rec: &mut Recorder, out: &AggregatorOutput) -> MResult<Tensor> {
        self.connector.project(rec, &out.layers[0].1, out.frames, out.patch_start, out.grid)
    }
}
