//! Fuzz target `tokenizer`: see `spatial_mllm_fuzz::checks::tokenizer` for the input and the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(init: spatial_mllm_fuzz::checks::init_tokenizer(), |data: &[u8]| spatial_mllm_fuzz::checks::tokenizer(data));
