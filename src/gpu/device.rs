//! The one GPU device of the engine: adapter selection, limits negotiated up to what the adapter
//! offers, optional features recorded, errors and device loss captured instead of panicking.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::buffer::{BufferPool, GpuBuffer, SharedPool};
use super::error::{GpuError, Result};
use super::pipelines::Pipeline;
use super::tensor::{DType, Tensor};

/// What the caller wants from the device.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Use f16 activations when the adapter has `shader-f16` (the fast path).
    pub allow_f16: bool,
    /// Request `subgroups` where available (native only: wgpu's WebGPU backend cannot request it).
    pub allow_subgroups: bool,
    /// Request cooperative matrices where the adapter has them (native only).
    pub allow_coop_matrix: bool,
    /// Fill every new buffer with NaN bytes, so that a kernel that skips an output is caught (tests).
    pub poison: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { allow_f16: true, allow_subgroups: true, allow_coop_matrix: true, poison: false }
    }
}

/// A summary of the adapter and of what was negotiated.
#[derive(Clone, Debug)]
pub struct GpuInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub has_f16: bool,
    pub has_subgroups: bool,
    pub has_timestamps: bool,
    pub max_binding: u64,
    pub max_buffer: u64,
    pub max_workgroup_storage: u32,
    pub max_storage_buffers: u32,
    /// The cooperative-matrix shapes negotiated (wgpu's `EXPERIMENTAL_COOPERATIVE_MATRIX`: Vulkan's
    /// VK_KHR_cooperative_matrix, Metal's simdgroup matrices); empty where the adapter has none.
    pub coop_matrix: Vec<CoopMatrixShape>,
    /// The adapter's smallest and largest subgroup sizes (0 where unknown).
    pub subgroup_sizes: (u32, u32),
}

/// One cooperative-matrix configuration the device runs: an MxK by KxN product of `ab` inputs
/// accumulated in `cr`, by one subgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopMatrixShape {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub ab: &'static str,
    pub cr: &'static str,
}

impl std::fmt::Display for CoopMatrixShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{} {}->{}", self.m, self.n, self.k, self.ab, self.cr)
    }
}

impl std::fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {}) f16={} subgroups={} timestamps={} max_binding={} MiB max_buffer={} MiB wg_storage={} KiB",
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            self.has_f16,
            self.has_subgroups,
            self.has_timestamps,
            self.max_binding >> 20,
            self.max_buffer >> 20,
            self.max_workgroup_storage >> 10
        )
    }
}

/// GPU memory the engine holds, by its own count (`Gpu::memory`). Not counted: wgpu's staging
/// buffers for readbacks (one per read, freed with it) and the uniform arena (one buffer, grown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryTally {
    /// The buffer pool's buffers alive: in use (activations, KV caches) plus kept for reuse.
    pub pool_bytes: u64,
    /// Of those, the ones kept for reuse (`Gpu::trim_pool` frees them).
    pub pooled_bytes: u64,
    /// Buffers outside the pool still alive: weights and other uploaded tables.
    pub owned_bytes: u64,
    /// Bind groups kept across submissions, and compiled pipelines.
    pub bind_groups: usize,
    pub pipelines: usize,
}

impl MemoryTally {
    /// All the GPU bytes counted: the pool's buffers and the owned ones.
    pub fn total_bytes(&self) -> u64 {
        self.pool_bytes + self.owned_bytes
    }
}

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: GpuInfo,
    pub limits: wgpu::Limits,
    /// Activation element type: F16 on the f16 path, else F32.
    pub act: DType,
    pub(super) pool: SharedPool,
    pub(super) pipelines: Mutex<HashMap<String, Arc<Pipeline>>>,
    /// The GEMM core's tiling once decided (`gemm_tile.rs`).
    pub(super) gemm_tile: Mutex<Option<super::gemm_tile::GemmChoice>>,
    /// The plain attention kernel once decided (`attention_pick.rs`).
    pub(super) attention_pick: Mutex<Option<super::attention_pick::AttentionPick>>,
    /// Submissions and dispatches so far.
    pub stats: super::GpuStats,
    lost: Arc<Mutex<Option<String>>>,
    errors: Arc<Mutex<Vec<GpuError>>>,
    poison: bool,
    dry_run: AtomicBool,
}

impl Gpu {
    /// Find an adapter and negotiate a device. Natively `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`
    /// select among several adapters.
    pub async fn new(opts: GpuOptions) -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = match std::env::var("WGPU_ADAPTER_NAME").ok().filter(|_| !cfg!(target_arch = "wasm32")) {
            Some(wanted) => {
                let wanted = wanted.to_lowercase();
                let all = instance.enumerate_adapters(wgpu::Backends::all()).await;
                let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
                all.into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
                    .ok_or_else(|| GpuError::NoAdapter(format!("none named like {wanted:?} among {names:?}")))?
            }
            None => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                })
                .await
                .map_err(|e| GpuError::NoAdapter(e.to_string()))?,
        };
        Self::from_adapter(adapter, opts).await
    }

    pub async fn from_adapter(adapter: wgpu::Adapter, opts: GpuOptions) -> Result<Gpu> {
        let ainfo = adapter.get_info();
        let afeat = adapter.features();
        let mut features = wgpu::Features::empty();
        let has_f16 = opts.allow_f16 && afeat.contains(wgpu::Features::SHADER_F16);
        if has_f16 {
            features |= wgpu::Features::SHADER_F16;
        }
        let has_subgroups = opts.allow_subgroups && !cfg!(target_arch = "wasm32") && afeat.contains(wgpu::Features::SUBGROUP);
        if has_subgroups {
            features |= wgpu::Features::SUBGROUP;
        }
        let has_timestamps = afeat.contains(wgpu::Features::TIMESTAMP_QUERY);
        if has_timestamps {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let coop_matrix = if opts.allow_coop_matrix && afeat.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
            coop_shapes(&adapter)
        } else {
            Vec::new()
        };
        // Ask for everything the adapter offers: binding and buffer sizes decide which weights fit.
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("spatial-mllm"),
                required_features: features,
                required_limits: limits.clone(),
                // SAFETY: the only experimental feature requested is cooperative matrices, used by
                // the kernels in `shaders/coop_*.wgsl` within the shapes the adapter reported.
                experimental_features: if coop_matrix.is_empty() {
                    wgpu::ExperimentalFeatures::disabled()
                } else {
                    unsafe { wgpu::ExperimentalFeatures::enabled() }
                },
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;

        let lost = Arc::new(Mutex::new(None));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, msg| {
                *lost.lock().unwrap() = Some(format!("{reason:?}: {msg}"));
            });
        }
        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let errors = errors.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let err = match e {
                    wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(e.to_string()),
                    other => GpuError::Validation(other.to_string()),
                };
                log::error!("{err}");
                errors.lock().unwrap().push(err);
            }));
        }

        let info = GpuInfo {
            name: ainfo.name.clone(),
            backend: format!("{:?}", ainfo.backend),
            device_type: format!("{:?}", ainfo.device_type),
            driver: format!("{} {}", ainfo.driver, ainfo.driver_info).trim().to_string(),
            has_f16,
            has_subgroups,
            has_timestamps,
            max_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_storage_buffers: limits.max_storage_buffers_per_shader_stage,
            coop_matrix,
            subgroup_sizes: (ainfo.subgroup_min_size, ainfo.subgroup_max_size),
        };
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            act: if has_f16 { DType::F16 } else { DType::F32 },
            #[allow(clippy::arc_with_non_send_sync)] // wgpu's types are not Send on wasm (one thread there); Arc keeps one code path for both
            pool: Arc::new(Mutex::new(BufferPool::default())),
            pipelines: Mutex::new(HashMap::new()),
            gemm_tile: Mutex::new(None),
            attention_pick: Mutex::new(None),
            stats: Default::default(),
            lost,
            errors,
            poison: opts.poison,
            dry_run: AtomicBool::new(false),
        })
    }

    /// Fails with the first error the device reported since the last check, or if it was lost.
    pub fn check(&self) -> Result<()> {
        if let Some(reason) = self.lost.lock().unwrap().clone() {
            return Err(GpuError::DeviceLost(reason));
        }
        let mut errs = self.errors.lock().unwrap();
        if !errs.is_empty() {
            let first = errs.remove(0);
            errs.clear();
            return Err(first);
        }
        Ok(())
    }

    /// While on, recorders drop their work instead of submitting it: a forward pass allocates,
    /// checks shapes and plans its chunks exactly as it would, but computes nothing. This measures
    /// the memory plan of inputs far too large to run on the test machines (outputs are garbage).
    pub fn set_dry_run(&self, on: bool) {
        self.dry_run.store(on, Ordering::Relaxed);
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run.load(Ordering::Relaxed)
    }

    /// Plan for a smaller storage-binding limit than the adapter's (e.g. WebGPU's default 128 MiB,
    /// to check that the engine fits adapters that offer no more): allocations larger than this
    /// fail, and chunk sizes derived from the limit shrink to it.
    pub fn limit_binding(&mut self, bytes: u64) {
        self.limits.max_storage_buffer_binding_size = self.limits.max_storage_buffer_binding_size.min(bytes);
        self.info.max_binding = self.limits.max_storage_buffer_binding_size;
    }

    pub fn is_lost(&self) -> bool {
        self.lost.lock().unwrap().is_some()
    }

    /// Destroy the device (to test recovery from device loss): from now on every check fails
    /// with `DeviceLost`, at once (the browser reports the loss asynchronously), and pending
    /// readbacks fail instead of hanging.
    pub fn destroy(&self) {
        self.lost.lock().unwrap().get_or_insert_with(|| "destroyed by the application".into());
        self.device.destroy();
    }

    /// The largest buffer this device can bind (the smaller of the binding and buffer limits).
    pub fn max_buffer_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    fn check_binding(&self, what: &str, bytes: u64) -> Result<()> {
        let limit = self.max_buffer_bytes();
        if bytes > limit {
            return Err(GpuError::BindingTooLarge { what: what.to_string(), bytes, limit });
        }
        Ok(())
    }

    /// Wrap a buffer of its own (not pooled): dropping it forgets the bind groups over it.
    pub(crate) fn owned_buffer(&self, raw: wgpu::Buffer) -> GpuBuffer {
        GpuBuffer::owned(raw, Arc::downgrade(&self.pool))
    }

    /// A storage buffer of at least `size` bytes, rounded up to 16 so that any buffer binds as an
    /// array of vec4s (the q4 / q8 GEMVs read their weights so, shaders/quant.wgsl).
    pub(crate) fn raw_buffer(&self, size: u64, label: &str) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.div_ceil(16).max(1) * 16,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A pooled storage buffer for a tensor of this shape and type (contents undefined, or NaN
    /// bytes when poisoning).
    pub fn alloc(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = ((shape.iter().product::<usize>() * dtype.size()) as u64).max(4);
        // Kernels bind the whole buffer, so its bucket must fit too (a limit that is not a power
        // of two can fall inside a bucket): then the exact size.
        let bucket = Some(BufferPool::bucket(bytes)).filter(|&b| b <= self.max_buffer_bytes()).unwrap_or(bytes.div_ceil(4) * 4);
        self.stats.allocated(bucket, shape); // also when too large: it names the culprit
        self.check_binding("tensor", bytes)?;
        let raw = self.pool.lock().unwrap().take(bucket);
        let raw = match raw {
            Some(b) => b,
            None => {
                self.stats.activation_created(bucket);
                self.raw_buffer(bucket, "activation")
            }
        };
        if self.poison && !self.is_dry_run() {
            self.queue.write_buffer(&raw, 0, &vec![0xFFu8; bucket as usize]);
        }
        #[allow(clippy::arc_with_non_send_sync)] // wgpu's types are not Send on wasm (one thread there); Arc keeps one code path for both
        let buf = Arc::new(GpuBuffer::pooled(raw, Arc::downgrade(&self.pool)));
        Ok(Tensor { buf, shape: shape.to_vec(), dtype })
    }

    /// An activation tensor of the device's activation type.
    pub fn alloc_act(&self, shape: &[usize]) -> Result<Tensor> {
        self.alloc(shape, self.act)
    }

    /// A buffer that lives outside the pool (weights, caches), filled with `bytes`.
    pub fn upload_raw(&self, bytes: &[u8], label: &str) -> Result<Arc<GpuBuffer>> {
        self.check_binding(label, bytes.len() as u64)?;
        let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
        let raw = self.raw_buffer(size, label);
        let mut padded;
        let data = if bytes.len() as u64 == size {
            bytes
        } else {
            padded = bytes.to_vec();
            padded.resize(size as usize, 0);
            &padded
        };
        self.queue.write_buffer(&raw, 0, data);
        #[allow(clippy::arc_with_non_send_sync)] // wgpu's types are not Send on wasm (one thread there); Arc keeps one code path for both
        Ok(Arc::new(self.owned_buffer(raw)))
    }

    /// Upload raw bytes as a tensor of a given type.
    pub fn upload(&self, bytes: &[u8], shape: &[usize], dtype: DType) -> Result<Tensor> {
        let t = self.alloc(shape, dtype)?;
        let mut data = bytes.to_vec();
        data.resize((data.len().div_ceil(4)) * 4, 0);
        self.queue.write_buffer(&t.buf.raw, 0, &data);
        Ok(t)
    }

    /// Upload f32 values as an activation tensor (converted to f16 on the f16 path).
    pub fn upload_act(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        assert_eq!(data.len(), shape.iter().product::<usize>(), "upload_act: data and shape disagree");
        match self.act {
            DType::F16 => {
                let h: Vec<half::f16> = data.iter().map(|&x| half::f16::from_f32(x)).collect();
                self.upload(bytemuck::cast_slice(&h), shape, DType::F16)
            }
            _ => self.upload(bytemuck::cast_slice(data), shape, DType::F32),
        }
    }

    pub fn upload_f32(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        self.upload(bytemuck::cast_slice(data), shape, DType::F32)
    }
    pub fn upload_u32(&self, data: &[u32], shape: &[usize]) -> Result<Tensor> {
        self.upload(bytemuck::cast_slice(data), shape, DType::U32)
    }
    pub fn upload_i32(&self, data: &[i32], shape: &[usize]) -> Result<Tensor> {
        self.upload(bytemuck::cast_slice(data), shape, DType::I32)
    }

    /// Compiled pipelines so far (one per family, entry point and variant).
    pub fn pipeline_count(&self) -> usize {
        self.pipelines.lock().unwrap().len()
    }

    /// Bind groups the device keeps for reuse (see `bind_cache.rs`).
    pub fn cached_bind_groups(&self) -> usize {
        self.pool.lock().unwrap().binds.len()
    }

    /// What the engine holds on the GPU now, by its own count (a long session's memory record).
    pub fn memory(&self) -> MemoryTally {
        let (pooled_bytes, owned_bytes, bind_groups) = {
            let p = self.pool.lock().unwrap();
            (p.pooled_bytes, p.owned_bytes, p.binds.len())
        };
        MemoryTally { pool_bytes: self.stats.pool_bytes(), pooled_bytes, owned_bytes, bind_groups, pipelines: self.pipeline_count() }
    }

    /// Bytes currently held by the pool for reuse.
    pub fn pooled_bytes(&self) -> u64 {
        self.pool.lock().unwrap().pooled_bytes
    }

    /// Free the pooled buffers and restart the activation high-water mark (call when no
    /// activation is alive, e.g. between benchmark runs).
    pub fn clear_pool(&self) {
        let released = self.pool.lock().unwrap().clear();
        self.stats.activation_released(released);
        self.stats.reset_peak();
    }

    /// Free the pooled buffers that no tensor uses, keeping the high-water mark: a stage whose
    /// temporaries have shapes no later stage asks for (the ViT's, VGGT's, the connector's, a
    /// long prefill's) gives their memory back instead of leaving it idle in the pool. Buffers
    /// still used by submitted work are freed by wgpu once that work is done.
    pub fn trim_pool(&self) {
        let released = self.pool.lock().unwrap().trim();
        self.stats.activation_released(released);
    }
}

/// The adapter's cooperative-matrix configurations, in the words `CoopMatrixShape` uses.
fn coop_shapes(adapter: &wgpu::Adapter) -> Vec<CoopMatrixShape> {
    let name = |t: wgpu::CooperativeScalarType| match t {
        wgpu::CooperativeScalarType::F32 => "f32",
        wgpu::CooperativeScalarType::F16 => "f16",
        wgpu::CooperativeScalarType::I32 => "i32",
        wgpu::CooperativeScalarType::U32 => "u32",
    };
    adapter
        .cooperative_matrix_properties()
        .into_iter()
        .map(|p| CoopMatrixShape { m: p.m_size, n: p.n_size, k: p.k_size, ab: name(p.ab_type), cr: name(p.cr_type) })
        .collect()
}
