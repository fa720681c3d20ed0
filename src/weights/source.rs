//! A checkpoint's safetensors files as the converter sees them: each file's header (tensor names,
//! dtypes, shapes and byte ranges), read from its first bytes only, so that a conversion can be
//! planned before any weight is read (natively from a mapped file, in the browser from two Range
//! requests), and the upstream dtypes turned into f32 rows.

use safetensors::tensor::{Dtype, Metadata};

use super::error::{PResult, PackageError};

/// The largest header accepted (safetensors' own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;
/// The most elements one tensor may have (the largest real one, Qwen's embedding, has 0.3 G):
/// element and byte counts then fit `usize` on wasm32 too, so a header claiming 10^18 bytes is
/// refused before anything is planned or allocated for it.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 31;

/// One tensor of a source file.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceTensor {
    /// Index of its file in the checkpoint's file list.
    pub file: usize,
    pub key: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Absolute byte range in the file.
    pub start: u64,
    pub end: u64,
}

/// One safetensors file of a checkpoint.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    /// Where the tensor data starts (8 + the header's length).
    pub data_start: u64,
    /// The file's size (data_start + the data section), as the header implies.
    pub size: u64,
    /// In file order.
    pub tensors: Vec<SourceTensor>,
}

/// The header's length from a file's first 8 bytes.
pub fn header_len(file: &str, first8: &[u8]) -> PResult<u64> {
    let bad = |msg: &str| PackageError::Safetensors { file: file.into(), msg: msg.into() };
    let bytes: [u8; 8] = first8.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("shorter than 8 bytes: not a safetensors file"))?;
    let n = u64::from_le_bytes(bytes);
    if n == 0 || n > MAX_HEADER_BYTES {
        return Err(bad(&format!("header length {n} is not plausible: not a safetensors file, or a damaged one")));
    }
    Ok(n)
}

impl SourceFile {
    /// Parse the JSON header (the `header_len` bytes after the first 8) of file number `index`.
    pub fn parse(index: usize, name: &str, header: &[u8]) -> PResult<SourceFile> {
        let bad = |msg: String| PackageError::Safetensors { file: name.into(), msg };
        let meta: Metadata = serde_json::from_slice(header).map_err(|e| bad(format!("invalid header: {e}")))?;
        let data_start = 8 + header.len() as u64;
        let mut tensors = Vec::new();
        for (key, info) in meta.tensors() {
            let (s, e) = (info.data_offsets.0 as u64, info.data_offsets.1 as u64);
            let elements = info.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64)).filter(|&n| n <= MAX_TENSOR_ELEMENTS);
            let Some(elements) = elements else {
                return Err(bad(format!("tensor {key} has shape {:?}, over {MAX_TENSOR_ELEMENTS} elements: a damaged header", info.shape)));
            };
            if e < s || e.saturating_sub(s) != (elements * info.dtype.bitsize() as u64).div_ceil(8) {
                return Err(bad(format!("tensor {key} has byte range {s}..{e}, which does not fit its shape {:?}", info.shape)));
            }
            let (Some(start), Some(end)) = (data_start.checked_add(s), data_start.checked_add(e)) else {
                return Err(bad(format!("tensor {key} has byte range {s}..{e}, beyond any file")));
            };
            tensors.push(SourceTensor { file: index, key, dtype: info.dtype, shape: info.shape.clone(), start, end });
        }
        tensors.sort_by_key(|t| (t.start, t.end));
        // The data section must be the tensors back to back.
        let mut at = data_start;
        for t in &tensors {
            if t.start != at {
                return Err(bad(format!(
                    "tensor {} has byte range {}..{}, which does not follow the previous tensor or fit its shape {:?}",
                    t.key, t.start, t.end, t.shape
                )));
            }
            at = t.end;
        }
        Ok(SourceFile { name: name.into(), data_start, size: at, tensors })
    }
}

/// The upstream dtypes the converter reads.
pub fn element_bytes(what: &str, dtype: Dtype) -> PResult<usize> {
    match dtype {
        Dtype::BF16 | Dtype::F16 => Ok(2),
        Dtype::F32 => Ok(4),
        other => Err(PackageError::Dtype { what: what.into(), dtype: format!("{other:?}") }),
    }
}

/// Upstream data (little-endian, `dtype`) as f32.
pub fn to_f32(what: &str, dtype: Dtype, bytes: &[u8]) -> PResult<Vec<f32>> {
    Ok(match dtype {
        Dtype::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        other => return Err(PackageError::Dtype { what: what.into(), dtype: format!("{other:?}") }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_bad_ones_are_named() {
        let h = br#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#;
        let f = SourceFile::parse(3, "m.safetensors", h).unwrap();
        assert_eq!(f.data_start, 8 + h.len() as u64);
        assert_eq!(f.size, f.data_start + 12);
        assert_eq!(f.tensors.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((f.tensors[1].start - f.data_start, f.tensors[1].file), (4, 3));
        let gap = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        let e = SourceFile::parse(0, "g.safetensors", gap).unwrap_err().to_string();
        assert!(e.contains("g.safetensors"), "{e}");
        assert!(SourceFile::parse(0, "x", b"not json").is_err());
        assert!(header_len("x", &[0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(header_len("x", &[1, 2]).is_err());
        assert_eq!(header_len("x", &[16, 0, 0, 0, 0, 0, 0, 0, 9]).unwrap(), 16);
    }
}
