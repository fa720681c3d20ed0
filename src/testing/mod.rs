//! The test suites, shared by the native tests, the browser harness (`web::run_kernel_suite` and
//! the parity suites) and `bench kernels`: the kernel cases (`cases`: every kernel against a CPU
//! f64 reference on fresh random inputs with odd sizes, outputs poisoned before each run) and the
//! models' parity checks against reference fixtures. Compiled only with the `testing` feature
//! (the CLI's `cli` enables it), so the app's wasm engine does not ship it.

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

pub use cases::{cases, run_case, CaseReport, KernelCase, Scale, Tol};
pub use util::{as_stored, compare, CaseOutcome, Rng};
