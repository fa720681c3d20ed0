//! Shard verification and upload, shared by every source (local directory natively; HTTP and the
//! browser cache later): a shard's bytes are checked against the manifest's size and SHA-256,
//! then each part goes to the GPU. Matrices stay packed; 1-D tensors become f32 vectors.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::error::{PResult, PackageError};
use super::manifest::{Manifest, PartEntry};
use super::quant::{PackedWeight, Weight};
use crate::gpu::{Gpu, Tensor};

/// A tensor on the GPU.
pub enum GpuParam {
    /// A packed matrix, in row ranges (parts) that each fit a binding.
    Matrix(Vec<Weight>),
    /// A 1-D tensor as f32 values (norm weights, biases, LayerScale gammas).
    Vector(Tensor),
}

/// Check a downloaded or read shard against the manifest.
pub fn verify_shard(m: &Manifest, index: usize, bytes: &[u8]) -> PResult<()> {
    let s = &m.shards[index];
    if bytes.len() as u64 != s.bytes {
        return Err(PackageError::Truncated { file: s.file.clone(), expected: s.bytes, got: bytes.len() as u64 });
    }
    let got = hex::encode(Sha256::digest(bytes));
    if got != s.sha256 {
        return Err(PackageError::HashMismatch { file: s.file.clone(), expected: s.sha256.clone(), got });
    }
    Ok(())
}

/// The packed part as stored, ready to unpack on the CPU.
pub fn part_weight(rows: usize, cols: usize, format: super::quant::WeightFormat, p: &PartEntry, shard: &[u8]) -> PackedWeight {
    let bytes = &shard[p.offset as usize..(p.offset + p.bytes) as usize];
    PackedWeight { format, rows, cols, words: bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(), scale_offset: p.scale_offset }
}

/// A tensor as the kernels will see it (dequantised), in its logical shape's row-major order, from a
/// validated manifest and a source of verified shards (`shard(i)`: local files, a download).
pub fn read_tensor(m: &Manifest, name: &str, file: &str, shard: &mut dyn FnMut(usize) -> PResult<Vec<u8>>) -> PResult<Vec<f32>> {
    let t = m.tensors.get(name).ok_or_else(|| PackageError::MissingTensor { name: name.into(), file: file.into() })?;
    // No capacity from the manifest's claims: the shards read bound what is allocated.
    let mut out = Vec::new();
    // Parts are in shard order: read (and hash) each shard once.
    let mut held: Option<(usize, Vec<u8>)> = None;
    for p in &t.parts {
        if held.as_ref().map(|(i, _)| *i) != Some(p.shard) {
            held = Some((p.shard, shard(p.shard)?));
        }
        let bytes = &held.as_ref().expect("read above").1;
        out.extend(part_weight(p.row_end - p.row_start, t.cols, t.format, p, bytes).unpack());
    }
    Ok(out)
}

/// Upload every part held by a verified shard; 1-D tensors (whole in one part) become vectors.
pub fn upload_shard(gpu: &Gpu, m: &Manifest, index: usize, shard: &[u8], out: &mut HashMap<String, GpuParam>) -> PResult<()> {
    for (name, t) in &m.tensors {
        for (pi, p) in t.parts.iter().enumerate() {
            if p.shard != index {
                continue;
            }
            let packed = part_weight(p.row_end - p.row_start, t.cols, t.format, p, shard);
            if t.shape.len() <= 1 {
                let v = packed.unpack();
                out.insert(name.clone(), GpuParam::Vector(gpu.upload_f32(&v, &[v.len()])?));
                continue;
            }
            let w = Weight::upload(gpu, &packed, name)?;
            match out.entry(name.clone()).or_insert_with(|| GpuParam::Matrix(Vec::new())) {
                GpuParam::Matrix(parts) => {
                    debug_assert_eq!(parts.len(), pi, "parts arrive in order");
                    parts.push(w)
                }
                GpuParam::Vector(_) => unreachable!("a vector has one part"),
            }
        }
    }
    Ok(())
}
