//! The kernel test suite, shared by the native tests (`tests/kernels.rs`) and the browser
//! harness (`web::run_kernel_suite`): every kernel against a CPU f64 reference on fresh random
//! inputs with odd sizes, outputs poisoned before each run.

pub mod cases;
#[cfg(not(target_arch = "wasm32"))]
pub mod memory_plan;
pub mod qwen_parity;
pub mod reference_file;
pub mod sampling_cases;
pub mod spatial_parity;
pub mod vggt_parity;
pub mod reference;
pub mod vggt_camera_parity;
mod util;
pub mod vggt_dpt_parity;

pub use cases::{all_cases, Case};
pub use util::{compare, CaseOutcome, CaseResult, Rng};
