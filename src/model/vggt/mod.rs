//! VGGT (spec sections 4.3 and 7, Appendix A): the aggregator (DINOv2 patch embedding, alternating
//! frame / global attention), the camera head and the DPT depth and point heads.

pub mod dpt;
