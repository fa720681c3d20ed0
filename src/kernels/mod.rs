//! Typed launchers for the WGSL kernel families in `shaders/`. Each checks shapes, picks the
//! variant (activation type, weight format, fused epilogue) and records its dispatch.

pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod embed;
pub mod gather;
pub mod gemm_tune;
pub mod head_act;
pub mod matmul;
pub mod norm;
pub mod regroup;
pub mod resize;
pub mod rope;
pub mod sample;

use crate::gpu::ShaderSource;

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const QUANT: &str = include_str!("../../shaders/quant.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
/// The tiled GEMM shared by matmul and conv (`#ifdef GEMM`; tiling from `Gpu::gemm_tile`).
const GEMM_CORE: &str = include_str!("../../shaders/gemm_core.wgsl");

pub(crate) const MATMUL: ShaderSource = ShaderSource { name: "matmul", code: include_str!("../../shaders/matmul.wgsl"), includes: &[COMMON, QUANT, GEMM_CORE] };
pub(crate) const ATTENTION: ShaderSource = ShaderSource { name: "attention", code: include_str!("../../shaders/attention.wgsl"), includes: &[COMMON, REDUCE] };
pub(crate) const NORM: ShaderSource = ShaderSource { name: "norm", code: include_str!("../../shaders/norm.wgsl"), includes: &[COMMON, REDUCE] };
pub(crate) const ROPE: ShaderSource = ShaderSource { name: "rope", code: include_str!("../../shaders/rope.wgsl"), includes: &[] };
pub(crate) const ELEMENTWISE: ShaderSource = ShaderSource { name: "elementwise", code: include_str!("../../shaders/elementwise.wgsl"), includes: &[COMMON] };
pub(crate) const EMBED: ShaderSource = ShaderSource { name: "embed", code: include_str!("../../shaders/embed.wgsl"), includes: &[QUANT] };
pub(crate) const GATHER: ShaderSource = ShaderSource { name: "gather", code: include_str!("../../shaders/gather.wgsl"), includes: &[] };
pub(crate) const PENALTY: ShaderSource = ShaderSource { name: "penalty", code: include_str!("../../shaders/penalty.wgsl"), includes: &[] };
pub(crate) const REGROUP: ShaderSource = ShaderSource { name: "regroup", code: include_str!("../../shaders/regroup.wgsl"), includes: &[] };
pub(crate) const CONV: ShaderSource = ShaderSource { name: "conv", code: include_str!("../../shaders/conv.wgsl"), includes: &[QUANT, GEMM_CORE] };
pub(crate) const RESIZE: ShaderSource = ShaderSource { name: "resize", code: include_str!("../../shaders/resize.wgsl"), includes: &[] };
pub(crate) const HEAD_ACT: ShaderSource = ShaderSource { name: "head_act", code: include_str!("../../shaders/head_act.wgsl"), includes: &[] };
pub(crate) const SAMPLE: ShaderSource = ShaderSource { name: "sample", code: include_str!("../../shaders/sample.wgsl"), includes: &[REDUCE] };

/// Every family, for tools that compile them all (validation, warm-up).
pub const ALL_SOURCES: [&ShaderSource; 13] =
    [&MATMUL, &ATTENTION, &NORM, &ROPE, &ELEMENTWISE, &EMBED, &SAMPLE, &PENALTY, &GATHER, &REGROUP, &CONV, &RESIZE, &HEAD_ACT];

/// Threads per workgroup of the flat element-wise kernels.
pub(crate) const FLAT_WG: u32 = 256;

pub(crate) fn check_act(kernel: &'static str, what: &str, t: &crate::gpu::Tensor, gpu: &crate::gpu::Gpu) -> crate::gpu::Result<()> {
    if t.dtype != gpu.act {
        return Err(crate::gpu::GpuError::Shape { kernel, msg: format!("{what} is {:?}, expected the activation type {:?}", t.dtype, gpu.act) });
    }
    Ok(())
}
