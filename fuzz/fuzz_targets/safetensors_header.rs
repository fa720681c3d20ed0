//! Fuzz target `safetensors_header`: see `spatial_mllm_fuzz::checks::safetensors_header` for the input and the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spatial_mllm_fuzz::checks::safetensors_header(data));
