//! Keys and values of every layer for the tokens seen so far: per layer one activation tensor
//! [2 * capacity, kv_heads * head_dim], keys in its first `capacity` rows, values in the others
//! (one buffer, so that the fused decode pass that writes both binds one; WebGPU allows 8 storage
//! buffers per shader stage). Written by buffer copies after RoPE, or by that pass.

use super::TextConfig;
use crate::gpu::{Gpu, Tensor};
use crate::model::{MResult, ModelError};

pub struct KvCache {
    /// Per layer: keys then values.
    pub kv: Vec<Tensor>,
    /// Tokens stored.
    pub len: usize,
    pub capacity: usize,
}

impl KvCache {
    pub fn new(gpu: &Gpu, cfg: &TextConfig, capacity: usize) -> MResult<KvCache> {
        let shape = [2 * capacity, cfg.kv_dim()];
        let kv = (0..cfg.layers).map(|_| gpu.alloc_act(&shape)).collect::<Result<Vec<_>, _>>()?;
        Ok(KvCache { kv, len: 0, capacity })
    }

    /// Bytes on the GPU (both K and V of every layer).
    pub fn bytes(&self) -> u64 {
        self.kv.iter().map(Tensor::bytes).sum()
    }

    /// Where a layer's values start in its tensor, in elements.
    pub fn v_base(&self) -> usize {
        self.kv.first().map_or(0, |t| self.capacity * t.cols())
    }

    /// Room for `n` more tokens, else a clear error.
    pub fn check_room(&self, n: usize) -> MResult<()> {
        if self.len + n > self.capacity {
            return Err(ModelError::Input(format!(
                "{} tokens do not fit the KV cache ({} held, capacity {}): shorten the prompt or the reply, or use fewer frames",
                n, self.len, self.capacity
            )));
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}
