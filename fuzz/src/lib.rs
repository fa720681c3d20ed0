//! The fuzz targets' checks (`checks`), shared with tests/fuzz_regressions.rs.

pub mod checks;
