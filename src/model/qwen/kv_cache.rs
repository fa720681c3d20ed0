//! Keys and values of every layer for the tokens seen so far: per layer two activation tensors
//! [capacity, kv_heads * head_dim], written by buffer copies after RoPE.

use super::TextConfig;
use crate::gpu::{Gpu, Tensor};
use crate::model::{MResult, ModelError};

pub struct KvCache {
    pub k: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// Tokens stored.
    pub len: usize,
    pub capacity: usize,
}

impl KvCache {
    pub fn new(gpu: &Gpu, cfg: &TextConfig, capacity: usize) -> MResult<KvCache> {
        let shape = [capacity, cfg.kv_dim()];
        let mut k = Vec::with_capacity(cfg.layers);
        let mut v = Vec::with_capacity(cfg.layers);
        for _ in 0..cfg.layers {
            k.push(gpu.alloc_act(&shape)?);
            v.push(gpu.alloc_act(&shape)?);
        }
        Ok(KvCache { k, v, len: 0, capacity })
    }

    /// Bytes on the GPU (both K and V of every layer).
    pub fn bytes(&self) -> u64 {
        self.k.iter().chain(&self.v).map(Tensor::bytes).sum()
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
