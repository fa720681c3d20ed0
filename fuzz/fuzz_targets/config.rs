//! Fuzz target `config`: see `spatial_mllm_fuzz::checks::config` for the input and the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spatial_mllm_fuzz::checks::config(data));
