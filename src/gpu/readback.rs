//! Asynchronous readback: copy to a staging buffer, `map_async`, await. Natively the device is
//! polled with a deadline so that a hung device becomes an error, never a hang.

use half::f16;

use super::device::Gpu;
use super::error::{GpuError, Result};
use super::tensor::{DType, Tensor};

/// Upper bound on how long one readback may wait natively (lavapipe runs big kernels slowly).
#[cfg(not(target_arch = "wasm32"))]
const NATIVE_TIMEOUT_S: u64 = 900;

impl Gpu {
    /// Read `bytes` bytes of a tensor's buffer starting at `offset`.
    pub async fn read_bytes(&self, t: &Tensor, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        self.check()?;
        let size = bytes.div_ceil(4) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&t.buf.raw, offset, &staging, 0, size);
        self.queue.submit(Some(enc.finish()));
        self.stats.submitted(0, 0, 0.0);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        {
            let poll = self.device.poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(std::time::Duration::from_secs(NATIVE_TIMEOUT_S)),
            });
            if let Err(e) = poll {
                self.check()?;
                return Err(match e {
                    wgpu::PollError::Timeout => GpuError::Timeout(NATIVE_TIMEOUT_S),
                    other => GpuError::Readback(other.to_string()),
                });
            }
        }
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
