//! `info`: the adapter and the negotiated limits and features.

use crate::gpu;

pub fn info(f32_only: bool) {
    println!("{}", gpu(f32_only).info);
}
