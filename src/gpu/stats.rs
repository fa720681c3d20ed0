//! Work counters of a device (the benchmarks report dispatches and submits per decoded token).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct GpuStats {
    submits: AtomicU64,
    dispatches: AtomicU64,
    bind_groups: AtomicU64,
    /// CPU time spent recording command buffers, in microseconds.
    encode_us: AtomicU64,
    /// Activation memory the device holds: bytes of the pool's buffers, in use or free for reuse
    /// (created and not yet released by `Gpu::trim_pool` / `Gpu::clear_pool`).
    held: AtomicU64,
    /// `held` when the high-water mark was last restarted (`reset_peak`): what was alive then (a
    /// loaded model's vectors and tables, which the pool also serves) is not an activation.
    base: AtomicU64,
    /// The most `held` reached since `reset_peak`.
    peak: AtomicU64,
    /// The most `held` reached since the last `take_window_peak` (per-stage breakdowns).
    window: AtomicU64,
    /// The largest single tensor allocated (bytes of its buffer, shape) since the last reset: it
    /// must fit the binding limit, whatever the total.
    largest: Mutex<(u64, Vec<usize>)>,
}

/// A reading of the counters; subtract two to count what happened between them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub submits: u64,
    pub dispatches: u64,
    /// Bind groups created (the others came from the cache).
    pub bind_groups: u64,
    /// CPU microseconds spent recording command buffers (uniforms, bind groups, passes).
    pub encode_us: u64,
}

impl GpuStats {
    pub(super) fn submitted(&self, dispatches: usize, bind_groups: usize, encode_ms: f64) {
        self.submits.fetch_add(1, Ordering::Relaxed);
        self.dispatches.fetch_add(dispatches as u64, Ordering::Relaxed);
        self.bind_groups.fetch_add(bind_groups as u64, Ordering::Relaxed);
        self.encode_us.fetch_add((encode_ms.max(0.0) * 1e3) as u64, Ordering::Relaxed);
    }

    pub(super) fn activation_created(&self, bytes: u64) {
        let held = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(held, Ordering::Relaxed);
        self.window.fetch_max(held, Ordering::Relaxed);
    }

    pub(super) fn activation_released(&self, bytes: u64) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub(super) fn allocated(&self, bytes: u64, shape: &[usize]) {
        let mut l = self.largest.lock().unwrap();
        if bytes > l.0 {
            *l = (bytes, shape.to_vec());
        }
    }

    /// The largest tensor buffer handed out since the last `reset_largest`: (bytes, shape).
    pub fn largest_alloc(&self) -> (u64, Vec<usize>) {
        self.largest.lock().unwrap().clone()
    }

    pub fn reset_largest(&self) {
        *self.largest.lock().unwrap() = (0, Vec::new());
    }

    /// Restart the high-water mark from what is held now, which becomes the baseline (call
    /// with no activation alive: after loading a model, before a run).
    pub fn reset_peak(&self) {
        let held = self.held.load(Ordering::Relaxed);
        self.base.store(held, Ordering::Relaxed);
        self.peak.store(held, Ordering::Relaxed);
        self.window.store(held, Ordering::Relaxed);
    }

    /// Peak activation memory since `reset_peak`: the most the pool held (buffers in use and
    /// buffers kept for reuse) above the baseline.
    pub fn activation_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed).saturating_sub(self.base.load(Ordering::Relaxed))
    }

    /// Bytes of the pool's buffers alive now (in use or kept for reuse), from zero, not from the baseline.
    pub fn pool_bytes(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Activation memory held now, above the baseline.
    pub fn held_bytes(&self) -> u64 {
        self.held.load(Ordering::Relaxed).saturating_sub(self.base.load(Ordering::Relaxed))
    }

    /// The most held above the baseline since the last call (or `reset_peak`); the next window
    /// starts from what is held now. A breakdown calls it as each stage ends.
    pub fn take_window_peak(&self) -> u64 {
        let held = self.held.load(Ordering::Relaxed);
        let peak = self.window.swap(held, Ordering::Relaxed);
        peak.max(held).saturating_sub(self.base.load(Ordering::Relaxed))
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            submits: self.submits.load(Ordering::Relaxed),
            dispatches: self.dispatches.load(Ordering::Relaxed),
            bind_groups: self.bind_groups.load(Ordering::Relaxed),
            encode_us: self.encode_us.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::Sub for StatsSnapshot {
    type Output = StatsSnapshot;
    fn sub(self, earlier: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            submits: self.submits - earlier.submits,
            dispatches: self.dispatches - earlier.dispatches,
            bind_groups: self.bind_groups - earlier.bind_groups,
            encode_us: self.encode_us - earlier.encode_us,
        }
    }
}
