//! Bind groups kept across submissions, and the uniform buffer they bind. A decode step records
//! the same ~440 dispatches over the same pooled buffers every token; creating each bind group
//! and a fresh uniform buffer per step cost 4.3 ms of a 10.6 ms step on an H200 (the GPU waits
//! for it). A bind group is keyed by its pipeline, its slice of the uniform buffer and its storage
//! buffers, so a step that repeats the last one's layout creates none.
//!
//! A cached group keeps its buffers alive, so the cache is cleared with the pool, forgets the
//! groups of a non-pooled buffer (weights, caches) when that buffer is dropped, and starts over
//! past `MAX_GROUPS` (encoders bind many short-lived combinations).

use std::collections::HashMap;

/// Bound on cached groups: a decode step needs about 440; an encoder layer a few dozen.
const MAX_GROUPS: usize = 4096;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    /// Address of the pipeline (pipelines live as long as the device's cache).
    pipeline: usize,
    uniform: (u64, u64),
    storage: Vec<(u32, wgpu::Buffer)>,
}

#[derive(Debug)]
pub struct BindCache {
    uniform: Option<wgpu::Buffer>,
    groups: HashMap<Key, wgpu::BindGroup>,
    /// `SPATIAL_MLLM_BIND_CACHE=off` (native) creates every group and uniform buffer afresh, as
    /// before the cache, to measure what it saves.
    enabled: bool,
}

impl Default for BindCache {
    fn default() -> Self {
        let enabled = std::env::var("SPATIAL_MLLM_BIND_CACHE").as_deref() != Ok("off");
        BindCache { uniform: None, groups: HashMap::new(), enabled }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(pipeline {:#x}, uniform {:?}, {} buffers)", self.pipeline, self.uniform, self.storage.len())
    }
}

impl BindCache {
    /// The uniform buffer with room for `bytes`, grown (and the groups over the old one
    /// forgotten) when too small. Reuse across submissions is safe: queue writes and
    /// submissions execute in order.
    pub fn uniform(&mut self, device: &wgpu::Device, bytes: u64) -> &wgpu::Buffer {
        let need = bytes.max(256).next_power_of_two();
        if !self.enabled || self.uniform.as_ref().is_none_or(|u| u.size() < need) {
            self.groups.clear();
            self.uniform = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("uniform arena"),
                size: need,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        self.uniform.as_ref().unwrap()
    }

    /// The bind group of a dispatch, and whether it was created now: binding 0 is `uniform`
    /// (offset, size) of the current uniform buffer, the rest are whole storage buffers.
    pub fn group(
        &mut self,
        device: &wgpu::Device,
        pipeline: &super::pipelines::Pipeline,
        uniform: (u64, u64),
        storage: &[(u32, &wgpu::Buffer)],
    ) -> (wgpu::BindGroup, bool) {
        let key = Key { pipeline: pipeline as *const _ as usize, uniform, storage: storage.iter().map(|(b, buf)| (*b, (*buf).clone())).collect() };
        if let Some(g) = self.groups.get(&key) {
            return (g.clone(), false);
        }
        if self.groups.len() >= MAX_GROUPS {
            self.groups.clear();
        }
        let ubuf = self.uniform.as_ref().expect("BindCache::uniform before group");
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: ubuf, offset: uniform.0, size: wgpu::BufferSize::new(uniform.1) }),
        }];
        for (b, buf) in storage {
            entries.push(wgpu::BindGroupEntry { binding: *b, resource: buf.as_entire_binding() });
        }
        let g = device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &pipeline.layout, entries: &entries });
        if self.enabled {
            self.groups.insert(key, g.clone());
        }
        (g, true)
    }

    /// Forget the groups that bind `buf` (it is being released).
    pub fn forget(&mut self, buf: &wgpu::Buffer) {
        self.groups.retain(|k, _| !k.storage.iter().any(|(_, b)| b == buf));
    }

    pub fn clear(&mut self) {
        self.groups.clear();
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}
