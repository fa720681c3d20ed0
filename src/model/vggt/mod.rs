//! VGGT (spec sections 4.3 and 7, Appendix A): the aggregator (DINOv2 patch embedding, alternating
//! frame / global attention), the camera head and the DPT depth and point heads.

pub mod aggregator;
pub mod block;
pub mod camera;
pub mod dpt;
pub mod model;
pub mod pos_embed;
pub mod pose;

pub use aggregator::{Aggregator, AggregatorOutput, AggregatorTaps, Frames, LayerOutput};
pub use camera::{CameraConfig, CameraHead};
pub use model::{Geometry, GeometrySource, PointCloud, Vggt};
pub use pose::{pose_encoding_to_extri_intri, Camera};
