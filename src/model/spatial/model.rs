//! The whole model: load from a package, encode a video once (ViT + VGGT + connector → fused
//! visual tokens), build the prompt embeddings, generate. A plain Qwen2.5-VL package is the same
//! model without the spatial encoder: its visual tokens are the ViT's merged tokens, so the paper's
//! comparison with and without VGGT runs through one code path.

use super::connector::{Connector, Generation};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::qwen::vision_layout::Grid;
use crate::model::qwen::{QwenConfig, TextModel, VisionModel};
use crate::model::vggt::{Aggregator, AggregatorOutput, AggregatorTaps, Frames};
use crate::model::{MResult, ModelError, Params};
use crate::weights::layout::ModelKind;
use crate::weights::shapes::VggtDims;

/// One video, preprocessed: the ViT's patches (processor order) with their grid, and the same
/// frames for VGGT as [frames, 3, H, W] in [0, 1] (unused without a spatial encoder).
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

/// Spatial-MLLM's spatial encoder: VGGT's aggregator and the connector that turns its features
/// into embeddings added to the ViT's tokens.
pub struct SpatialEncoder {
    pub generation: Generation,
    pub aggregator: Aggregator,
    pub connector: Connector,
}

pub struct SpatialMllm {
    pub kind: ModelKind,
    pub cfg: QwenConfig,
    pub text: TextModel,
    pub vision: VisionModel,
    /// None for a plain Qwen2.5-VL package.
    pub spatial: Option<SpatialEncoder>,
}

impl SpatialMllm {
    /// Build from a loaded package of a Spatial-MLLM or Qwen2.5-VL kind (a clear error for any
    /// other kind).
    pub async fn new(gpu: &Gpu, kind: &str, config: &serde_json::Value, params: &Params) -> MResult<SpatialMllm> {
        let (mk, generation) = match ModelKind::from_id(kind) {
            Some(k @ ModelKind::SpatialMllmV10) => (k, Some(Generation::V10)),
            Some(k @ ModelKind::SpatialMllmV11) => (k, Some(Generation::V11)),
            Some(k @ ModelKind::QwenVl) => (k, None),
            _ => {
                return Err(ModelError::Config(format!(
                    "a package of kind {kind:?} is neither a Spatial-MLLM checkpoint (spatial-mllm-v1.0 or spatial-mllm-v1.1) nor a Qwen2.5-VL one (qwen2.5-vl)"
                )))
            }
        };
        let cfg = QwenConfig::from_json(config)?;
        let text = TextModel::new(gpu, &cfg.text, params)?;
        let vision = VisionModel::new(gpu, &cfg.vision, params)?;
        let spatial = match generation {
            Some(generation) => {
                let dims = VggtDims::from_config(mk, config);
                let channels = 2 * dims.dim;
                Some(SpatialEncoder {
                    aggregator: Aggregator::new(gpu, dims, params).await?,
                    connector: Connector::new(gpu, params, generation, channels, cfg.text.hidden)?,
                    generation,
                })
            }
            None => None,
        };
        Ok(SpatialMllm { kind: mk, cfg, text, vision, spatial })
    }

    /// Whether VGGT and the connector take part (false for a plain Qwen2.5-VL).
    pub fn has_spatial_encoder(&self) -> bool {
        self.spatial.is_some()
    }

    /// The spatial encoder, or an error naming what needs it.
    pub fn spatial_encoder(&self, what: &str) -> MResult<&SpatialEncoder> {
        self.spatial.as_ref().ok_or_else(|| ModelError::Config(format!("{what} needs a Spatial-MLLM package; this one is {}", self.kind.id())))
    }

    /// Visual tokens [t · h/2 · w/2, hidden] of one video: fused with the spatial embeddings for
    /// Spatial-MLLM, the ViT's merged tokens for Qwen2.5-VL; run once per video (prefill), never
    /// per decoded token.
    pub fn encode_video(&self, rec: &mut Recorder, v: &VideoInput, mut taps: Option<&mut VisualTaps>) -> MResult<Tensor> {
        self.check_video(v)?;
        rec.end_stage()?; // what earlier work left in the pool has other shapes
        let vit = self.vision.forward(rec, v.vit_patches, &[v.grid], None)?;
        rec.end_stage()?;
        let Some(s) = &self.spatial else {
            if let Some(t) = taps {
                t.vit = Some(vit.clone());
            }
            return Ok(vit);
        };
        let out = s.vggt_features(rec, &v.frames, taps.as_deref_mut().map(|t| &mut t.aggregator))?;
        rec.end_stage()?;
        let spatial = s.spatial_embeddings(rec, &out)?;
        drop(out); // the kept layer is read: its buffers go at the end of the stage
        rec.end_stage()?;
        if let Some(t) = taps {
            t.vit = Some(vit.clone());
            t.spatial = Some(spatial.clone());
        }
        s.connector.fuse(rec, &vit, &spatial)
    }

    /// The ViT's merged tokens of one image (`pixel_values` with grid t = 1), as Qwen2.5-VL
    /// encodes an image; the spatial encoder, which works on videos, takes no part.
    pub fn encode_image(&self, rec: &mut Recorder, vit_patches: &[f32], grid: Grid) -> MResult<Tensor> {
        if grid.t != 1 {
            return Err(ModelError::Input(format!("an image has one temporal patch, not {}", grid.t)));
        }
        self.vision.forward(rec, vit_patches, &[grid], None)
    }

    /// `encode_video` one stage at a time, each submitted and finished on the GPU before the
    /// next starts, so that the times between `on_stage` calls ("ViT", then with the spatial
    /// encoder "VGGT" and "connector", each at its start) are the stages' own.
    pub async fn encode_video_staged(&self, gpu: &Gpu, v: &VideoInput<'_>, on_stage: &mut dyn FnMut(&str)) -> MResult<Tensor> {
        self.check_video(v)?;
        on_stage("ViT");
        gpu.trim_pool(); // what earlier work left in the pool has other shapes
        let mut rec = Recorder::new(gpu);
        let vit = self.vision.forward(&mut rec, v.vit_patches, &[v.grid], None)?;
        rec.end_stage()?;
        gpu.finish().await?;
        let Some(s) = &self.spatial else { return Ok(vit) };
        on_stage("VGGT");
        let mut rec = Recorder::new(gpu);
        let out = s.vggt_features(&mut rec, &v.frames, None)?;
        rec.end_stage()?;
        gpu.finish().await?;
        on_stage("connector");
        let mut rec = Recorder::new(gpu);
        let spatial = s.spatial_embeddings(&mut rec, &out)?;
        drop(out); // the kept layer is read: its buffers go at the end of the stage
        let fused = s.connector.fuse(&mut rec, &vit, &spatial)?;
        drop((vit, spatial));
        rec.end_stage()?;
        gpu.finish().await?;
        Ok(fused)
    }

    /// Both encoders must see the same frames, in temporal pairs (the ViT alone needs only its grid).
    fn check_video(&self, v: &VideoInput) -> MResult<()> {
        let Some(s) = &self.spatial else { return Ok(()) };
        let (g, f) = (v.grid, &v.frames);
        let p = s.aggregator.dims.patch;
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
}

impl SpatialEncoder {
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
