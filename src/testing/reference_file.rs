//! Reference outputs of the upstream code (`reference.safetensors` in tests/fixtures), read as f64.

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

pub struct ReferenceFile {
    bytes: Vec<u8>,
}

impl ReferenceFile {
    pub fn new(bytes: Vec<u8>) -> Result<ReferenceFile, String> {
        SafeTensors::deserialize(&bytes).map_err(|e| format!("reference.safetensors: {e}"))?;
        Ok(ReferenceFile { bytes })
    }

    fn with<T>(&self, name: &str, f: impl FnOnce(safetensors::tensor::TensorView<'_>) -> Result<T, String>) -> Result<T, String> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| e.to_string())?;
        f(st.tensor(name).map_err(|_| format!("the reference lacks {name}"))?)
    }

    pub fn has(&self, name: &str) -> bool {
        self.with(name, |_| Ok(())).is_ok()
    }

    /// A value of the file's `__metadata__` header (e.g. digests of outputs too large to store).
    pub fn metadata(&self, key: &str) -> Option<String> {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes).ok()?;
        meta.metadata().as_ref()?.get(key).cloned()
    }

    pub fn shape(&self, name: &str) -> Result<Vec<usize>, String> {
        self.with(name, |t| Ok(t.shape().to_vec()))
    }

    /// Values of an F32 or I32 tensor, row-major.
    pub fn f64s(&self, name: &str) -> Result<Vec<f64>, String> {
        self.with(name, |t| {
            let d = t.data();
            match t.dtype() {
                Dtype::F32 => Ok(d.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()),
                Dtype::I32 => Ok(d.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64).collect()),
                other => Err(format!("{name}: unexpected dtype {other:?}")),
            }
        })
    }

    /// Bytes of a U8 tensor (raw frames and images), row-major.
    pub fn u8s(&self, name: &str) -> Result<Vec<u8>, String> {
        self.with(name, |t| match t.dtype() {
            Dtype::U8 => Ok(t.data().to_vec()),
            other => Err(format!("{name}: expected U8, got {other:?}")),
        })
    }

    /// Values of an I32 or I64 tensor (indices, sizes), row-major.
    pub fn i64s(&self, name: &str) -> Result<Vec<i64>, String> {
        self.with(name, |t| {
            let d = t.data();
            match t.dtype() {
                Dtype::I32 => Ok(d.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64).collect()),
                Dtype::I64 => Ok(d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
                other => Err(format!("{name}: expected I32 or I64, got {other:?}")),
            }
        })
    }

    pub fn f32s(&self, name: &str) -> Result<Vec<f32>, String> {
        Ok(self.f64s(name)?.into_iter().map(|v| v as f32).collect())
    }
}
