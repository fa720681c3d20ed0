//! GPU time of a recording, from timestamp queries written before its first command and after
//! its last (DESIGN.md: time with timestamps where the adapter has them). Benchmarks use it so
//! that submission and readback latency don't count as kernel time.

use super::{DType, Gpu, Result, Tensor};

pub struct GpuTimer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    /// The two raw timestamps, copied where `Gpu::read_u32` can read them.
    stamps: Tensor,
}

impl GpuTimer {
    /// A timer, or None where the adapter has no timestamp queries.
    pub fn new(gpu: &Gpu) -> Result<Option<GpuTimer>> {
        if !gpu.info.has_timestamps || gpu.is_dry_run() {
            return Ok(None);
        }
        let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("timer"), ty: wgpu::QueryType::Timestamp, count: 2 });
        let resolved = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timer resolve"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let stamps = gpu.alloc(&[4], DType::U32)?;
        Ok(Some(GpuTimer { queries, resolved, stamps }))
    }

    /// An empty compute pass that stamps the start (`index` 0) or the end (1).
    pub(crate) fn stamp(&self, enc: &mut wgpu::CommandEncoder, index: u32) {
        let writes = wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: (index == 0).then_some(0),
            end_of_pass_write_index: (index == 1).then_some(1),
        };
        drop(enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("timer"), timestamp_writes: Some(writes) }));
        if index == 1 {
            enc.resolve_query_set(&self.queries, 0..2, &self.resolved, 0);
            enc.copy_buffer_to_buffer(&self.resolved, 0, &self.stamps.buf.raw, 0, 16);
        }
    }

    /// Milliseconds between the two stamps, once the recording's submissions have finished.
    pub async fn elapsed_ms(&self, gpu: &Gpu) -> Result<f64> {
        let w = gpu.read_u32(&self.stamps).await?;
        let (t0, t1) = (w[0] as u64 | (w[1] as u64) << 32, w[2] as u64 | (w[3] as u64) << 32);
        Ok(t1.saturating_sub(t0) as f64 * gpu.queue.get_timestamp_period() as f64 / 1e6)
    }
}
