//! Asynchronous readback: copy to a staging buffer, `map_async`, await. Natively the device is
//! polled with a deadline so that a hung device becomes an error, never a hang. A copy can also
//! ride at the end of a recorded pass (`Staged`), so that reading it does not wait for later ones.

use std::sync::{Arc, Mutex};

use half::f16;

use super::device::Gpu;
use super::error::{GpuError, Result};
use super::tensor::{DType, Tensor};

/// Upper bound on how long one readback may wait natively (lavapipe runs big kernels slowly).
#[cfg(not(target_arch = "wasm32"))]
const NATIVE_TIMEOUT_S: u64 = 900;

/// A small tensor copied into a mappable buffer as the last command of a recorded pass
/// (`Recorder::stage`). Reading it waits for that pass only, so the next pass can already run:
/// decoding reads a token id while the following step computes.
pub struct Staged {
    pub(super) buf: wgpu::Buffer,
    pub(super) bytes: u64,
    /// Set when the pass holding the copy is submitted.
    pub(super) submitted: Arc<Mutex<Option<wgpu::SubmissionIndex>>>,
}

impl Gpu {
    /// Read `bytes` bytes of a tensor's buffer starting at `offset`.
    pub async fn read_bytes(&self, t: &Tensor, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        self.check()?;
        let size = bytes.div_ceil(4) * 4;
        let staging = self.staging_buffer(size);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&t.buf.raw, offset, &staging, 0, size);
        let index = self.queue.submit(Some(enc.finish()));
        self.stats.submitted(0, 0, 0.0);
        self.map_and_read(&staging, bytes, index).await
    }

    /// Read what `Recorder::stage` copied, once its pass has been submitted.
    pub async fn read_staged(&self, s: &Staged) -> Result<Vec<u8>> {
        self.check()?;
        if self.is_dry_run() {
            // Nothing was submitted (`Gpu::set_dry_run`): zeros, so that a planned generation
            // goes on (token 0) and plans its decode steps too.
            return Ok(vec![0; s.bytes as usize]);
        }
        let index = s.submitted.lock().unwrap().clone();
        let index = index.ok_or_else(|| GpuError::Readback("a staged tensor read before its pass was submitted".into()))?;
        self.map_and_read(&s.buf, s.bytes, index).await
    }

    pub(super) fn staging_buffer(&self, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Map `staging` once submission `index` is done (natively: waiting for that submission
    /// only, with a deadline) and copy out its first `bytes` bytes.
    async fn map_and_read(&self, staging: &wgpu::Buffer, bytes: u64, index: wgpu::SubmissionIndex) -> Result<Vec<u8>> {
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        {
            let poll = self.device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: Some(std::time::Duration::from_secs(NATIVE_TIMEOUT_S)) });
            if let Err(e) = poll {
                self.check()?;
                return Err(match e {
                    wgpu::PollError::Timeout => GpuError::Timeout(NATIVE_TIMEOUT_S),
                    other => GpuError::Readback(other.to_string()),
                });
            }
        }
        #[cfg(target_arch = "wasm32")]
        let _ = index;
        let mapped = rx.await.map_err(|_| GpuError::Readback("the map callback was dropped".into()))?;
        self.check()?;
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        let data = {
            let view = staging.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        Ok(data)
    }

    /// Read a float tensor (F32 or F16) as f32 values.
    pub async fn read_f32(&self, t: &Tensor) -> Result<Vec<f32>> {
        let raw = self.read_bytes(t, 0, t.bytes()).await?;
        Ok(match t.dtype {
            DType::F16 => bytemuck::cast_slice::<u8, f16>(&raw).iter().map(|h| h.to_f32()).collect(),
            DType::F32 => bytemuck::cast_slice::<u8, f32>(&raw).to_vec(),
            other => panic!("read_f32 on a {other:?} tensor"),
        })
    }

    pub async fn read_u32(&self, t: &Tensor) -> Result<Vec<u32>> {
        let raw = self.read_bytes(t, 0, t.bytes()).await?;
        Ok(bytemuck::cast_slice::<u8, u32>(&raw).to_vec())
    }

    /// Wait until all submitted work is done (benchmark fences).
    pub async fn finish(&self) -> Result<()> {
        let t = self.alloc(&[1], DType::U32)?;
        self.read_bytes(&t, 0, 4).await.map(|_| ())
    }
}
