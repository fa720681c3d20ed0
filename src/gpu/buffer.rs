//! GPU buffers and a size-bucketed pool. A dropped activation buffer goes back to the pool; queue
//! ordering makes reuse by a later submission safe. The pool also holds the bind-group cache,
//! whose groups must not outlive the buffers they bind.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};

use super::bind_cache::BindCache;

#[derive(Debug)]
pub struct GpuBuffer {
    pub raw: wgpu::Buffer,
    pool: Weak<Mutex<BufferPool>>,
    /// Pooled buffers go back to the pool when dropped; the others (weights, caches) are
    /// released, and the cached bind groups over them forgotten.
    pooled: bool,
}

impl GpuBuffer {
    /// A buffer that returns to `pool` when dropped.
    pub fn pooled(raw: wgpu::Buffer, pool: Weak<Mutex<BufferPool>>) -> Self {
        GpuBuffer { raw, pool, pooled: true }
    }
    /// A buffer of its own, released when dropped (`pool` is told, to drop its bind groups, and
    /// counts it while it lives).
    pub fn owned(raw: wgpu::Buffer, pool: Weak<Mutex<BufferPool>>) -> Self {
        if let Some(Ok(mut p)) = pool.upgrade().as_deref().map(Mutex::lock) {
            p.owned_bytes += raw.size();
        }
        GpuBuffer { raw, pool, pooled: false }
    }
    pub fn size(&self) -> u64 {
        self.raw.size()
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            if let Ok(mut pool) = pool.lock() {
                if self.pooled {
                    pool.put(self.raw.clone());
                } else {
                    pool.binds.forget(&self.raw);
                    pool.owned_bytes -= self.raw.size();
                }
            }
        }
    }
}

/// Free storage buffers by bucketed size. Buckets: powers of two up to 1 MiB, then steps of a
/// sixteenth of the power of two, so that waste stays under 12.5 % for large activations.
/// A bucket hands out its lowest buffer (by wgpu's id order), not the last one returned: a step
/// that repeats the previous one then gets the same buffers whatever order they came back in,
/// and finds its bind groups in the cache.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: HashMap<u64, BTreeSet<wgpu::Buffer>>,
    pub pooled_bytes: u64,
    /// Bytes of the live buffers outside the pool (weights, tables, caches of their own): what
    /// the engine holds besides activations, counted so that a long session can show it stays put.
    pub owned_bytes: u64,
    pub binds: BindCache,
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
        let buf = self.free.get_mut(&bucket)?.pop_first()?;
        self.pooled_bytes -= bucket;
        Some(buf)
    }
    fn put(&mut self, buf: wgpu::Buffer) {
        self.pooled_bytes += buf.size();
        self.free.entry(buf.size()).or_default().insert(buf);
    }
    /// Release every pooled buffer (for example before loading a larger model); returns the
    /// bytes released.
    pub fn clear(&mut self) -> u64 {
        self.free.clear();
        self.binds.clear();
        std::mem::take(&mut self.pooled_bytes)
    }

    /// Release the free buffers but keep the bind groups over buffers still in use; returns the
    /// bytes released. wgpu frees a buffer once its last handle is gone, and the cached bind
    /// groups over it hold handles too, so those groups go with it.
    pub fn trim(&mut self) -> u64 {
        let free = std::mem::take(&mut self.free);
        for buf in free.values().flatten() {
            self.binds.forget(buf);
        }
        std::mem::take(&mut self.pooled_bytes)
    }
}

pub type SharedPool = Arc<Mutex<BufferPool>>;
