//! VGGT as a whole (aggregator and the heads a package holds), for space-aware frame sampling:
//! world points from the point head, or from the depth head unprojected with the camera head's
//! cameras (the paper's variant).

use super::camera::{CameraConfig, CameraHead};
use super::dpt::{DptHead, DptInput, DptOutput};
use super::pose::{pose_encoding_to_extri_intri, Camera};
use super::{Aggregator, Frames};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::{MResult, ModelError, Params};
use crate::weights::layout::ModelKind;
use crate::weights::shapes::VggtDims;

/// Where the world points come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometrySource {
    /// The point head's world points and confidences (the released sampler).
    PointHead,
    /// The depth head unprojected with the camera head's cameras, depth confidences (the paper).
    DepthAndCameras,
}

/// World points [frames, h, w, 3] and confidences [frames, h, w] at the frames' patch-grid size.
pub struct PointCloud {
    pub points: Vec<f32>,
    pub conf: Vec<f32>,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// Every frame's camera from the camera head, when asked for (`point_cloud_with`) or used.
    pub cameras: Option<Vec<Camera>>,
}

/// The heads' outputs on the GPU (see `Vggt::geometry`).
pub struct Geometry {
    pub dpt: DptOutput,
    pub pose: Option<Tensor>,
}

pub struct Vggt {
    pub aggregator: Aggregator,
    pub camera: Option<CameraHead>,
    pub depth: Option<DptHead>,
    pub point: Option<DptHead>,
}

impl Vggt {
    /// From a package of kind `vggt` (heads are optional: a head the package lacks is None).
    pub async fn new(gpu: &Gpu, kind: &str, config: &serde_json::Value, params: &Params) -> MResult<Vggt> {
        let mk = ModelKind::from_id(kind).ok_or_else(|| ModelError::Config(format!("unknown model kind {kind:?}")))?;
        let dims = VggtDims::from_config(mk, config);
        let has = |prefix: &str| params.has(&format!("{prefix}norm.weight"));
        Ok(Vggt {
            camera: if params.has("vggt.camera_head.embed_pose.weight") { Some(CameraHead::new(&CameraConfig::from_dims(&dims), params)?) } else { None },
            depth: if has("vggt.depth_head.") { Some(DptHead::new(gpu, params, "vggt.depth_head.", &dims)?) } else { None },
            point: if has("vggt.point_head.") { Some(DptHead::new(gpu, params, "vggt.point_head.", &dims)?) } else { None },
            aggregator: Aggregator::new(gpu, dims, params).await?,
        })
    }

    /// World points of every frame, from `source`.
    pub async fn point_cloud(&self, gpu: &Gpu, frames: &Frames<'_>, source: GeometrySource) -> MResult<PointCloud> {
        self.point_cloud_with(gpu, frames, source, false).await
    }

    /// As `point_cloud`; with `cameras` also every frame's camera when the package has a camera
    /// head (for showing the cameras with the points).
    pub async fn point_cloud_with(&self, gpu: &Gpu, frames: &Frames<'_>, source: GeometrySource, cameras: bool) -> MResult<PointCloud> {
        let g = self.geometry_with(gpu, frames, source, cameras)?;
        let (h, w) = (g.dpt.conf.shape[1], g.dpt.conf.shape[2]);
        let values = gpu.read_f32(&g.dpt.values).await?;
        let conf = gpu.read_f32(&g.dpt.conf).await?;
        let cams = match g.pose {
            Some(p) => Some(pose_encoding_to_extri_intri(&gpu.read_f32(&p).await?, h, w)?),
            None => None,
        };
        let points = match (source, &cams) {
            (GeometrySource::DepthAndCameras, Some(cams)) => crate::model::spatial::sampling::unproject(&values, cams, h, w)?,
            _ => values,
        };
        Ok(PointCloud { points, conf, frames: frames.count, height: h, width: w, cameras: cams })
    }

    /// The GPU part of `point_cloud`, submitted: the aggregator, then the heads of `source` (the
    /// DPT head's activated outputs, and the pose encoding [frames, 9] for `DepthAndCameras`).
    pub fn geometry(&self, gpu: &Gpu, frames: &Frames<'_>, source: GeometrySource) -> MResult<Geometry> {
        self.geometry_with(gpu, frames, source, false)
    }

    /// As `geometry`; with `cameras` the pose encoding also for the point head when the package
    /// has a camera head.
    pub fn geometry_with(&self, gpu: &Gpu, frames: &Frames<'_>, source: GeometrySource, cameras: bool) -> MResult<Geometry> {
        let missing = |what: &str| ModelError::Config(format!("this VGGT package has no {what}: convert a checkpoint with it, or use the other geometry source"));
        let head = match source {
            GeometrySource::PointHead => self.point.as_ref().ok_or_else(|| missing("point head"))?,
            GeometrySource::DepthAndCameras => {
                self.camera.as_ref().ok_or_else(|| missing("camera head"))?;
                self.depth.as_ref().ok_or_else(|| missing("depth head"))?
            }
        };
        let dims = &self.aggregator.dims;
        let last = dims.depth - 1;
        let mut keep: Vec<usize> = dims.dpt_layers.to_vec();
        keep.push(last);
        let mut rec = Recorder::new(gpu);
        let out = self.aggregator.forward(&mut rec, frames, &keep, None)?;
        let s = out.frames;
        let layer = |l: usize| out.layers.iter().find(|(i, _)| *i == l).map(|(_, t)| t.reshape(&[s, out.tokens, dims.dim]));
        let pose = match &self.camera {
            Some(head) if cameras || source == GeometrySource::DepthAndCameras => Some(head.forward(&mut rec, &layer(last).expect("kept"))?),
            _ => None,
        };
        rec.submit()?;
        let layers: Vec<_> = dims.dpt_layers.iter().map(|&l| layer(l).expect("kept")).collect();
        let sizes = vec![(frames.height, frames.width); s];
        let input = DptInput { layers: [&layers[0], &layers[1], &layers[2], &layers[3]], frame_sizes: &sizes, patch_start: out.patch_start };
        let dpt = head.forward(gpu, &input)?;
        // The kept layers are read: they and the temporaries give their memory back (the video
        // encoded next has other shapes).
        drop((layers, out));
        gpu.trim_pool();
        Ok(Geometry { dpt, pose })
    }
}
