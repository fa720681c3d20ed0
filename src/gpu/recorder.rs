//! The recorder collects a whole forward pass (dispatches and copies) and submits it as one
//! command buffer. Kernel parameters go into one uniform arena written once per submission; bind
//! groups come from the device's cache (`bind_cache.rs`), so a repeated step creates none.

use std::sync::{Arc, Mutex};

use super::readback::Staged;
use super::timer::GpuTimer;
use super::buffer::GpuBuffer;
use super::device::Gpu;
use super::error::Result;
use super::pipelines::Pipeline;
use super::tensor::Tensor;

/// A storage binding of a dispatch: binding index and buffer.
pub struct Binding<'a>(pub u32, pub &'a Arc<GpuBuffer>);

impl<'a> Binding<'a> {
    pub fn t(index: u32, t: &'a Tensor) -> Self {
        Binding(index, &t.buf)
    }
}

enum Op {
    Dispatch { pipe: Arc<Pipeline>, uniform: (u64, u64), bufs: Vec<(u32, Arc<GpuBuffer>)>, groups: [u32; 3] },
    Copy { src: Arc<GpuBuffer>, src_off: u64, dst: Arc<GpuBuffer>, dst_off: u64, bytes: u64 },
    Stage { src: Arc<GpuBuffer>, dst: wgpu::Buffer, bytes: u64, submitted: Arc<Mutex<Option<wgpu::SubmissionIndex>>> },
}

pub struct Recorder<'g> {
    pub gpu: &'g Gpu,
    uniforms: Vec<u8>,
    ops: Vec<Op>,
    /// Dispatches recorded so far (reported by the benchmarks).
    pub dispatches: usize,
    /// Stamps the start of the first submission and the end of each (benchmarks).
    timer: Option<(&'g GpuTimer, bool)>,
}

impl<'g> Recorder<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        Recorder { gpu, uniforms: Vec::new(), ops: Vec::new(), dispatches: 0, timer: None }
    }

    /// A recorder whose submissions `timer` measures, from the first command to the last.
    pub fn timed(gpu: &'g Gpu, timer: &'g GpuTimer) -> Self {
        Recorder { timer: Some((timer, false)), ..Recorder::new(gpu) }
    }

    /// Record one dispatch: `params` goes to binding 0 (uniform), `bufs` are storage bindings.
    pub fn dispatch<P: bytemuck::Pod>(&mut self, pipe: Arc<Pipeline>, params: &P, bufs: &[Binding<'_>], groups: [u32; 3]) {
        check_slots(&pipe.label, &pipe.slots, bufs);
        let align = self.gpu.limits.min_uniform_buffer_offset_alignment.max(16) as usize;
        let offset = self.uniforms.len().div_ceil(align) * align;
        self.uniforms.resize(offset, 0);
        self.uniforms.extend_from_slice(bytemuck::bytes_of(params));
        // Uniform bindings must be at least 16 bytes and a multiple of 16.
        let size = std::mem::size_of::<P>().div_ceil(16) * 16;
        self.uniforms.resize(offset + size, 0);
        let bufs = bufs.iter().map(|b| (b.0, b.1.clone())).collect();
        self.ops.push(Op::Dispatch { pipe, uniform: (offset as u64, size as u64), bufs, groups });
        self.dispatches += 1;
    }

    /// Record a dispatch of `n` workgroups laid out in 2D when `n` exceeds the per-dimension limit.
    /// Kernels recover the flat index as `wid.x + wid.y * nwg.x`.
    pub fn dispatch_flat<P: bytemuck::Pod>(&mut self, pipe: Arc<Pipeline>, params: &P, bufs: &[Binding<'_>], n: u32) {
        let groups = flat_groups(n, self.gpu.limits.max_compute_workgroups_per_dimension);
        self.dispatch(pipe, params, bufs, groups)
    }

    /// Record a buffer-to-buffer copy (for example a KV-cache write).
    pub fn copy(&mut self, src: &Tensor, src_off: u64, dst: &Tensor, dst_off: u64, bytes: u64) {
        self.ops.push(Op::Copy { src: src.buf.clone(), src_off, dst: dst.buf.clone(), dst_off, bytes });
    }

    /// Copy a small tensor (a token id) into a mappable buffer at this point of the pass; read it
    /// with `Gpu::read_staged` once the pass is submitted.
    pub fn stage(&mut self, t: &Tensor) -> Staged {
        let bytes = t.bytes();
        let size = bytes.div_ceil(4).max(1) * 4;
        let buf = self.gpu.staging_buffer(size);
        let submitted = Arc::new(Mutex::new(None));
        self.ops.push(Op::Stage { src: t.buf.clone(), dst: buf.clone(), bytes: size, submitted: submitted.clone() });
        Staged { buf, bytes, submitted }
    }

    /// Encode everything into one command buffer and submit it.
    pub fn submit(mut self) -> Result<()> {
        self.flush()
    }

    /// Submit what is recorded so far and go on recording. The recorded ops hold every buffer
    /// they bind, so a long pass (a prefill, an encoder) flushes between layers to let the pool
    /// reuse its temporaries; the queue keeps the order, so reuse is safe.
    pub fn flush(&mut self) -> Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut self.ops);
        let uniforms = std::mem::take(&mut self.uniforms);
        let dispatches = std::mem::take(&mut self.dispatches);
        if self.gpu.is_dry_run() {
            return Ok(()); // see Gpu::set_dry_run
        }
        self.encode_and_submit(&ops, &uniforms, dispatches)
    }

    /// End a stage: submit what is recorded, then free the pool's idle buffers
    /// (`Gpu::trim_pool`). The next stage's shapes differ from this one's, so keeping its
    /// temporaries for reuse would only add them to the next stage's peak.
    pub fn end_stage(&mut self) -> Result<()> {
        self.flush()?;
        self.gpu.trim_pool();
        Ok(())
    }

    fn encode_and_submit(&mut self, ops: &[Op], uniforms: &[u8], dispatches: usize) -> Result<()> {
        self.gpu.check()?;
        let t0 = super::clock::now_ms();
        let device = &self.gpu.device;
        // Held until the submission: the uniform buffer is shared by every recorder.
        let mut pool = self.gpu.pool.lock().unwrap();
        let binds = &mut pool.binds;
        let uniform = binds.uniform(device, uniforms.len() as u64);
        if !uniforms.is_empty() {
            self.gpu.queue.write_buffer(uniform, 0, uniforms);
        }
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward") });
        if let Some((timer, begun)) = &mut self.timer {
            if !*begun {
                timer.stamp(&mut enc, 0);
                *begun = true;
            }
        }
        let mut created = 0;
        let mut storage: Vec<(u32, &wgpu::Buffer)> = Vec::with_capacity(8);
        let mut i = 0;
        while i < ops.len() {
            match &ops[i] {
                Op::Copy { src, src_off, dst, dst_off, bytes } => {
                    enc.copy_buffer_to_buffer(&src.raw, *src_off, &dst.raw, *dst_off, *bytes);
                    i += 1;
                }
                Op::Stage { src, dst, bytes, .. } => {
                    enc.copy_buffer_to_buffer(&src.raw, 0, dst, 0, *bytes);
                    i += 1;
                }
                Op::Dispatch { .. } => {
                    // One compute pass for a run of consecutive dispatches.
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    while let Some(Op::Dispatch { pipe, uniform, bufs, groups }) = ops.get(i) {
                        storage.clear();
                        storage.extend(bufs.iter().map(|(b, buf)| (*b, &buf.raw)));
                        let (bg, new) = binds.group(device, pipe, *uniform, &storage);
                        created += new as usize;
                        pass.set_pipeline(&pipe.raw);
                        pass.set_bind_group(0, &bg, &[]);
                        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                        i += 1;
                    }
                }
            }
        }
        if let Some((timer, _)) = &self.timer {
            timer.stamp(&mut enc, 1);
        }
        let commands = enc.finish();
        // Recording time only: a CPU adapter executes the work inside `submit`.
        let encode_ms = super::clock::now_ms() - t0;
        let index = self.gpu.queue.submit(Some(commands));
        drop(pool);
        for op in ops {
            if let Op::Stage { submitted, .. } = op {
                *submitted.lock().unwrap() = Some(index.clone());
            }
        }
        self.gpu.stats.submitted(dispatches, created, encode_ms);
        Ok(())
    }
}

/// A dispatch of a family with a contract binds exactly the slots its entry point uses in its
/// variant, each once: otherwise a launcher bug, reported with the kernel and the slot.
fn check_slots(label: &str, slots: &[(u32, &'static str)], bufs: &[Binding<'_>]) {
    for b in bufs {
        assert!(slots.iter().any(|s| s.0 == b.0), "kernel {label}: binding {} is bound but is no slot this variant's entry point uses (slots {slots:?})", b.0);
    }
    for &(index, name) in slots {
        let n = bufs.iter().filter(|b| b.0 == index).count();
        assert!(n == 1, "kernel {label}: slot {name} (binding {index}) is bound {n} times, must be once");
    }
}

/// Split `n` workgroups into (x, y, 1) with x, y within the per-dimension limit.
pub fn flat_groups(n: u32, max_dim: u32) -> [u32; 3] {
    if n <= max_dim {
        [n.max(1), 1, 1]
    } else {
        let y = n.div_ceil(max_dim);
        [n.div_ceil(y), y, 1]
    }
}

#[cfg(test)]
mod tests {
    use super::check_slots;

    #[test]
    #[should_panic(expected = "kernel norm::norm|v: slot G (binding 2) is bound 0 times")]
    fn unbound_slot_panics() {
        check_slots("norm::norm|v", &[(2, "G")], &[]);
    }
}
