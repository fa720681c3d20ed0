//! Typed launchers for the WGSL kernel families in `shaders/`. Each checks shapes, picks the
//! variant (activation type, weight format, fused epilogue) and records its dispatch.

pub mod attention;
pub mod attention_tune;
pub mod conv;
pub mod copy;
pub mod decode;
pub mod elementwise;
pub mod embed;
pub mod fold;
pub mod gather;
pub mod gemm_tune;
pub mod head_act;
pub mod matmul;
pub(crate) mod measure;
pub mod norm;
pub mod regroup;
pub mod resize;
pub mod rope;
pub mod sample;
pub mod tuning_memo;

use crate::gpu::{Contract, Entry, GemmTile, Launch, ShaderSource};

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const QUANT: &str = include_str!("../../shaders/quant.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const SINCOS: &str = include_str!("../../shaders/sincos.wgsl");
/// The tiled GEMM shared by matmul and conv (`#ifdef GEMM`; tiling from `Gpu::gemm_tile`).
const GEMM_CORE: &str = include_str!("../../shaders/gemm_core.wgsl");
/// The GEMM core's entry point: its workgroup size follows the variant's tiling.
const GEMM_ENTRY: Entry = Entry::per_variant("gemm", GemmTile::entry_workgroup);

// Every family has a contract (declared next to its launcher): the WGSL without the declarations
// the contract emits.
pub(crate) const MATMUL_WGSL: ShaderSource =
    ShaderSource { name: "matmul", code: include_str!("../../shaders/matmul.wgsl"), includes: &[COMMON, QUANT, SINCOS, GEMM_CORE, REDUCE] };
const CONV_WGSL: ShaderSource = ShaderSource { name: "conv", code: include_str!("../../shaders/conv.wgsl"), includes: &[QUANT, GEMM_CORE] };
pub(crate) const ATTENTION_WGSL: ShaderSource = ShaderSource { name: "attention", code: include_str!("../../shaders/attention.wgsl"), includes: &[COMMON, REDUCE] };
const NORM_WGSL: ShaderSource = ShaderSource { name: "norm", code: include_str!("../../shaders/norm.wgsl"), includes: &[COMMON, REDUCE] };
const ROPE_WGSL: ShaderSource = ShaderSource { name: "rope", code: include_str!("../../shaders/rope.wgsl"), includes: &[SINCOS] };
const ELEMENTWISE_WGSL: ShaderSource = ShaderSource { name: "elementwise", code: include_str!("../../shaders/elementwise.wgsl"), includes: &[COMMON] };
const EMBED_WGSL: ShaderSource = ShaderSource { name: "embed", code: include_str!("../../shaders/embed.wgsl"), includes: &[QUANT] };
const GATHER_WGSL: ShaderSource = ShaderSource { name: "gather", code: include_str!("../../shaders/gather.wgsl"), includes: &[] };
const PENALTY_WGSL: ShaderSource = ShaderSource { name: "penalty", code: include_str!("../../shaders/penalty.wgsl"), includes: &[] };
const REGROUP_WGSL: ShaderSource = ShaderSource { name: "regroup", code: include_str!("../../shaders/regroup.wgsl"), includes: &[] };
const RESIZE_WGSL: ShaderSource = ShaderSource { name: "resize", code: include_str!("../../shaders/resize.wgsl"), includes: &[] };
const HEAD_ACT_WGSL: ShaderSource = ShaderSource { name: "head_act", code: include_str!("../../shaders/head_act.wgsl"), includes: &[] };
const SAMPLE_WGSL: ShaderSource = ShaderSource { name: "sample", code: include_str!("../../shaders/sample.wgsl"), includes: &[REDUCE] };
const COPY_WGSL: ShaderSource = ShaderSource { name: "copy", code: include_str!("../../shaders/copy.wgsl"), includes: &[] };

/// Every family's contract (`crate::gpu::Contract`), for tools that compile them all.
pub static CONTRACTS: [&Contract; 14] = [
    &matmul::MATMUL,
    &attention::ATTENTION,
    &norm::NORM,
    &rope::ROPE,
    &elementwise::ELEMENTWISE,
    &embed::EMBED,
    &sample::SAMPLE,
    &sample::PENALTY,
    &gather::GATHER,
    &regroup::REGROUP,
    &resize::RESIZE,
    &conv::CONV,
    &head_act::HEAD_ACT,
    &copy::COPY,
];

/// Every (family, entry point, variant) the launchers can produce, enumerated by the functions
/// the launchers choose their variants with (both activation types, every GEMM tiling).
pub fn all_launches() -> Vec<Launch> {
    let mut out = Vec::new();
    out.extend(matmul::launches());
    out.extend(attention::launches());
    out.extend(norm::launches());
    out.extend(rope::launches());
    out.extend(elementwise::launches());
    out.extend(embed::launches());
    out.extend(sample::launches());
    out.extend(gather::launches());
    out.extend(regroup::launches());
    out.extend(conv::launches());
    out.extend(resize::launches());
    out.extend(head_act::launches());
    out.extend(copy::launches());
    out
}

/// Threads per workgroup of the flat one-thread-per-item kernels.
pub(crate) const FLAT_WG: u32 = 256;

/// The activation types every launcher is enumerated for.
pub(crate) const ACTS: [crate::gpu::DType; 2] = [crate::gpu::DType::F32, crate::gpu::DType::F16];

pub(crate) fn check_act(kernel: &'static str, what: &str, t: &crate::gpu::Tensor, gpu: &crate::gpu::Gpu) -> crate::gpu::Result<()> {
    if t.dtype != gpu.act {
        return Err(crate::gpu::GpuError::Shape { kernel, msg: format!("{what} is {:?}, expected the activation type {:?}", t.dtype, gpu.act) });
    }
    Ok(())
}
