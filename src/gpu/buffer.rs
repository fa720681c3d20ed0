//! GPU buffers and a size-bucketed pool. A dropped activation buffer goes back to the pool; queue
//! ordering makes reuse by a later submission safe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

#[derive(Debug)]
pub struct GpuBuffer {
    pub raw: wgpu::Buffer,
    pool: Option<Weak<Mutex<BufferPool>>>,
}

impl GpuBuffer {
    pub fn new(raw: wgpu::Buffer, pool: Option<Weak<Mutex<BufferPool>>>) -> Self {
        GpuBuffer { raw, pool }
    }
    pub fn size(&self) -> u64 {
        self.raw.size()
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.as_ref().and_then(Weak::upgrade) {
            if let Ok(mut pool) = pool.lock() {
                pool.put(self.raw.clone());
            }
        }
    }
}

/// Free storage buffers by bucketed size. Buckets: powers of two up to 1 MiB, then steps of an
/// eighth of the power of two, so that waste stays under 12.5 % for large activations.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    pub pooled_bytes: u64,
}

impl BufferPool {
    pub fn bucket(bytes: u64) -> u64 {
        let b = bytes.max(256);
        let p = b.next_power_of_two();
        if p <= 1 << 20 {
            return p;
        }
        let step = p / 16;
        b.div_ceil(step) * step
    }
    pub fn take(&mut self, bucket: u64) -> Option<wgpu::Buffer> {
        let buf = self.free.get_mut(&bucket)?.pop()?;
        self.pooled_bytes -= bucket;
        Some(buf)
    }
    fn put(&mut self, buf: wgpu::Buffer) {
        self.pooled_bytes += buf.size();
        self.free.entry(buf.size()).or_default().push(buf);
    }
    /// Release every pooled buffer (for example before loading a larger model).
    pub fn clear(&mut self) {
        self.free.clear();
        self.pooled_bytes = 0;
    }
}

pub type SharedPool = Arc<Mutex<BufferPool>>;
