//! Weights: block quantisation formats and their GPU form. (The package format, converter and
//! loaders build on these.)

pub mod quant;

pub use quant::{PackedWeight, WeightFormat, Weight, BLOCK};
