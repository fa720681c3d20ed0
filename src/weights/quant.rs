//! Weight formats. Every matrix is stored row-major [rows, cols] with each row zero-padded to a
//! multiple of 32 columns (`padded_cols`), so that all formats index alike and kernels read whole
//! blocks. Byte layout (little-endian u32 words):
//!
//! * `F32`: the padded rows as f32 (small tensors only).
//! * `F16`: the padded rows as f16, two per word.
//! * `Q8`: per 32-weight block 8 words of int8 (element e in byte e), then all block scales as
//!   f16 (two per word), at word offset `scale_offset`. w = q * d, d = max|w| / 127.
//! * `Q4`: per block 4 words of 4-bit codes (element e in nibble e % 8 of word e / 8, low nibble
//!   first), then the f16 scales. w = (q - 8) * d with d = m / -8 where m is the block's value of
//!   largest magnitude, so the extreme is exact and all 16 codes are used (ggml's Q4_0 rule).

use std::sync::Arc;

use half::f16;

use crate::gpu::{Gpu, GpuBuffer, Result};

pub const BLOCK: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    F32,
    F16,
    Q8,
    Q4,
}

impl WeightFormat {
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::Q8 => "q8",
            WeightFormat::Q4 => "q4",
        }
    }
    /// The shader flag that selects this format's unpacking.
    pub fn flag(self) -> &'static str {
        match self {
            WeightFormat::F32 => "W_F32",
            WeightFormat::F16 => "W_F16",
            WeightFormat::Q8 => "W_Q8",
            WeightFormat::Q4 => "W_Q4",
        }
    }
    /// The formats matrices are stored in (F32 is for small tensors only).
    pub fn all() -> [WeightFormat; 3] {
        [WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4]
    }
    pub fn parse(s: &str) -> Option<WeightFormat> {
        [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4].into_iter().find(|f| f.name() == s)
    }
    /// Bytes per weight, scales included.
    pub fn bits_per_weight(self) -> f64 {
        match self {
            WeightFormat::F32 => 32.0,
            WeightFormat::F16 => 16.0,
            WeightFormat::Q8 => 8.0 + 16.0 / 32.0,
            WeightFormat::Q4 => 4.0 + 16.0 / 32.0,
        }
    }
}

pub fn padded_cols(cols: usize) -> usize {
    cols.div_ceil(BLOCK) * BLOCK
}

/// A weight matrix packed on the CPU, ready to upload.
#[derive(Clone, Debug)]
pub struct PackedWeight {
    pub format: WeightFormat,
    pub rows: usize,
    pub cols: usize,
    pub words: Vec<u32>,
    /// Word offset of the scales (quantised formats; 0 for f16).
    pub scale_offset: usize,
}

impl PackedWeight {
    pub fn pack(format: WeightFormat, w: &[f32], rows: usize, cols: usize) -> PackedWeight {
        assert_eq!(w.len(), rows * cols, "pack: data and shape disagree");
        #[cfg(not(target_arch = "wasm32"))]
        let (codes, scales) = pack_rows_parallel(format, w, rows, cols);
        #[cfg(target_arch = "wasm32")]
        let (codes, scales) = pack_rows(format, w, rows, cols);
        Self::assemble(format, rows, cols, codes, scales)
    }

    /// One thread's packing: rows in order, then the scales (two f16 per word).
    pub fn pack_serial(format: WeightFormat, w: &[f32], rows: usize, cols: usize) -> PackedWeight {
        let (codes, scales) = pack_rows(format, w, rows, cols);
        Self::assemble(format, rows, cols, codes, scales)
    }

    fn assemble(format: WeightFormat, rows: usize, cols: usize, mut words: Vec<u32>, scales: Vec<f16>) -> PackedWeight {
        let scale_offset = words.len();
        words.extend(scale_words(&scales));
        PackedWeight { format, rows, cols, words, scale_offset }
    }

    /// The weights as the kernels see them (CPU dequantisation; the reference for kernel tests).
    pub fn unpack(&self) -> Vec<f32> {
        let kp = padded_cols(self.cols);
        let bpr = kp / BLOCK;
        let scale = |blk: usize| -> f32 {
            let w = self.words[self.scale_offset + blk / 2];
            f16::from_bits((w >> (16 * (blk % 2))) as u16).to_f32()
        };
        let mut out = vec![0f32; self.rows * self.cols];
        for r in 0..self.rows {
            for c in 0..self.cols {
                let i = r * kp + c;
                let blk = r * bpr + c / BLOCK;
                let e = c % BLOCK;
                out[r * self.cols + c] = match self.format {
                    WeightFormat::F32 => f32::from_bits(self.words[i]),
                    WeightFormat::F16 => f16::from_bits((self.words[i / 2] >> (16 * (i % 2))) as u16).to_f32(),
                    WeightFormat::Q8 => {
                        let byte = (self.words[blk * 8 + e / 4] >> (8 * (e % 4))) as u8 as i8;
                        byte as f32 * scale(blk)
                    }
                    WeightFormat::Q4 => {
                        let nib = (self.words[blk * 4 + e / 8] >> (4 * (e % 8))) & 15;
                        (nib as f32 - 8.0) * scale(blk)
                    }
                };
            }
        }
        out
    }

    pub fn bytes(&self) -> usize {
        self.words.len() * 4
    }
}

/// The codes of `rows` rows (row-major, each row padded to whole blocks) and, for the quantised
/// formats, one f16 scale per block, in row order. Packing a matrix in row chunks and
/// concatenating the codes, then the scales, gives the same words as packing it whole.
pub fn pack_rows(format: WeightFormat, w: &[f32], rows: usize, cols: usize) -> (Vec<u32>, Vec<f16>) {
    assert_eq!(w.len(), rows * cols, "pack: data and shape disagree");
    let kp = padded_cols(cols);
    let blocks = rows * kp / BLOCK;
    let row_block = |r: usize, b: usize| -> [f32; BLOCK] {
        let mut v = [0f32; BLOCK];
        for (e, x) in v.iter_mut().enumerate() {
            let c = b * BLOCK + e;
            if c < cols {
                *x = w[r * cols + c];
            }
        }
        v
    };
    let mut words = Vec::new();
    let mut scales: Vec<f16> = Vec::with_capacity(blocks);
    match format {
        WeightFormat::F32 => {
            for r in 0..rows {
                for b in 0..kp / BLOCK {
                    words.extend(row_block(r, b).iter().map(|x| x.to_bits()));
                }
            }
        }
        WeightFormat::F16 => {
            let mut h = Vec::with_capacity(rows * kp);
            for r in 0..rows {
                for b in 0..kp / BLOCK {
                    h.extend(row_block(r, b).iter().map(|&x| f16::from_f32(x)));
                }
            }
            words = bytemuck::cast_slice::<f16, u32>(&h).to_vec();
        }
        WeightFormat::Q8 => {
            for r in 0..rows {
                for b in 0..kp / BLOCK {
                    let v = row_block(r, b);
                    let amax = v.iter().fold(0f32, |a, &x| a.max(x.abs()));
                    let d = f16::from_f32(amax / 127.0);
                    let id = if d.to_f32() > 0.0 { 1.0 / d.to_f32() } else { 0.0 };
                    let q: Vec<u8> = v.iter().map(|&x| ((x * id).round().clamp(-127.0, 127.0) as i8) as u8).collect();
                    words.extend(q.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                    scales.push(d);
                }
            }
        }
        WeightFormat::Q4 => {
            for r in 0..rows {
                for b in 0..kp / BLOCK {
                    let v = row_block(r, b);
                    let m = v.iter().fold(0f32, |a, &x| if x.abs() > a.abs() { x } else { a });
                    let d = f16::from_f32(m / -8.0);
                    let id = if d.to_f32() != 0.0 { 1.0 / d.to_f32() } else { 0.0 };
                    let q: Vec<u32> = v.iter().map(|&x| ((x * id + 8.5).floor().clamp(0.0, 15.0)) as u32).collect();
                    words.extend(q.chunks(8).map(|c| c.iter().enumerate().fold(0u32, |acc, (i, &n)| acc | (n << (4 * i)))));
                    scales.push(d);
                }
            }
        }
    }
    (words, scales)
}

/// `pack_rows` over row chunks on all cores (the same codes and scales).
#[cfg(not(target_arch = "wasm32"))]
pub fn pack_rows_parallel(format: WeightFormat, w: &[f32], rows: usize, cols: usize) -> (Vec<u32>, Vec<f16>) {
    if rows * cols < 1 << 20 || rows < 16 {
        return pack_rows(format, w, rows, cols);
    }
    let rows_per = ((1 << 18) / cols).max(1);
    let starts: Vec<usize> = (0..rows).step_by(rows_per).collect();
    let parts = super::parallel::map(&starts, |&r0| {
        let r1 = (r0 + rows_per).min(rows);
        pack_rows(format, &w[r0 * cols..r1 * cols], r1 - r0, cols)
    });
    (parts.iter().flat_map(|p| p.0.iter().copied()).collect(), parts.iter().flat_map(|p| p.1.iter().copied()).collect())
}

/// Scales as stored: two f16 per word, the last word zero-padded.
pub fn scale_words(scales: &[f16]) -> impl Iterator<Item = u32> + '_ {
    scales.chunks(2).map(|c| c[0].to_bits() as u32 | (c.get(1).map_or(0, |h| h.to_bits() as u32) << 16))
}

/// A packed weight matrix resident on the GPU.
#[derive(Clone, Debug)]
pub struct Weight {
    pub buf: Arc<GpuBuffer>,
    pub format: WeightFormat,
    pub rows: usize,
    pub cols: usize,
    pub scale_offset: u32,
}

impl Weight {
    pub fn upload(gpu: &Gpu, p: &PackedWeight, name: &str) -> Result<Weight> {
        let buf = gpu.upload_raw(bytemuck::cast_slice(&p.words), name)?;
        Ok(Weight { buf, format: p.format, rows: p.rows, cols: p.cols, scale_offset: p.scale_offset as u32 })
    }
    pub fn padded_cols(&self) -> usize {
        padded_cols(self.cols)
    }

    /// A weight of this format and shape whose buffer is never written (it reads as zeros): for
    /// planning the memory of a full-size model without its weights (see `Gpu::set_dry_run`).
    pub fn placeholder(gpu: &Gpu, format: WeightFormat, rows: usize, cols: usize, name: &str) -> Result<Weight> {
        let mut w = Weight { buf: gpu.upload_raw(&[0; 4], name)?, format, rows, cols, scale_offset: 0 };
        let codes = rows * w.code_words_per_row();
        let quant = matches!(format, WeightFormat::Q8 | WeightFormat::Q4);
        let scales = if quant { (rows * w.padded_cols() / BLOCK).div_ceil(2) } else { 0 };
        let bytes = ((codes + scales) * 4) as u64;
        if bytes > gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size) {
            return Err(crate::gpu::error::shape_err("placeholder", format!("{name}: {rows}x{cols} {format:?} is {bytes} bytes, above the binding limit")));
        }
        #[allow(clippy::arc_with_non_send_sync)] // wgpu's types are not Send on wasm (one thread there); Arc keeps one code path for both
        let buf = Arc::new(gpu.owned_buffer(gpu.raw_buffer(bytes, name)));
        w.buf = buf;
        w.scale_offset = if quant { codes as u32 } else { 0 };
        Ok(w)
    }

    /// Words of packed codes per row (scales of quantised formats live after all rows' codes).
    fn code_words_per_row(&self) -> usize {
        let kp = self.padded_cols();
        match self.format {
            WeightFormat::F32 => kp,
            WeightFormat::F16 => kp / 2,
            WeightFormat::Q8 => kp / BLOCK * 8,
            WeightFormat::Q4 => kp / BLOCK * 4,
        }
    }

    /// Rows `r0..r1` as a weight of their own, copied on the GPU (codes and scales are both
    /// row-contiguous, so this is exact): e.g. the q, k and v parts of a fused qkv matrix.
    pub fn slice_rows(&self, gpu: &Gpu, r0: usize, r1: usize) -> Result<Weight> {
        let bpr = self.padded_cols() / BLOCK;
        let quant = matches!(self.format, WeightFormat::Q8 | WeightFormat::Q4);
        if r0 >= r1 || r1 > self.rows || (quant && (r0 * bpr) % 2 != 0) {
            return Err(crate::gpu::error::shape_err("slice_rows", format!("rows {r0}..{r1} of a {}-row {:?} weight", self.rows, self.format)));
        }
        let wpr = self.code_words_per_row();
        let codes = (r1 - r0) * wpr;
        let scales = if quant { ((r1 - r0) * bpr).div_ceil(2) } else { 0 };
        let raw = gpu.raw_buffer(((codes + scales).max(1) * 4) as u64, "weight rows");
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&self.buf.raw, (r0 * wpr * 4) as u64, &raw, 0, (codes * 4) as u64);
        if quant {
            let from = self.scale_offset as usize + r0 * bpr / 2;
            enc.copy_buffer_to_buffer(&self.buf.raw, (from * 4) as u64, &raw, (codes * 4) as u64, (scales * 4) as u64);
        }
        gpu.queue.submit(Some(enc.finish()));
        #[allow(clippy::arc_with_non_send_sync)] // wgpu's types are not Send on wasm (one thread there); Arc keeps one code path for both
        let buf = Arc::new(gpu.owned_buffer(raw));
        Ok(Weight { buf, format: self.format, rows: r1 - r0, cols: self.cols, scale_offset: if quant { codes as u32 } else { 0 } })
    }
}

/// Round-trip error of a format on `rows` x `cols` weights: (RMS error / RMS weight, max |error| /
/// RMS weight).
pub fn roundtrip_error(format: WeightFormat, w: &[f32], rows: usize, cols: usize) -> (f64, f64) {
    let back = PackedWeight::pack(format, w, rows, cols).unpack();
    let rms = (w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
    let (mut se, mut max) = (0f64, 0f64);
    for (a, b) in w.iter().zip(&back) {
        let e = (*a as f64 - *b as f64).abs();
        se += e * e;
        max = max.max(e);
    }
    ((se / w.len() as f64).sqrt() / rms, max / rms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Packing on all cores gives the serial words, for odd row counts and block counts.
    #[test]
    fn parallel_packing_matches_serial() {
        let mut rng = Rng::new(11);
        for (rows, cols) in [(1031, 1029), (517, 2050), (4097, 300)] {
            let w: Vec<f32> = (0..rows * cols).map(|_| rng.uniform(-1.0, 1.0)).collect();
            for format in [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4] {
                let serial = PackedWeight::pack_serial(format, &w, rows, cols);
                let parallel = PackedWeight::pack(format, &w, rows, cols);
                assert_eq!(serial.scale_offset, parallel.scale_offset, "{format:?} {rows}x{cols}");
                assert!(serial.words == parallel.words, "{format:?} {rows}x{cols}: words differ");
            }
        }
    }

    /// Student-t (5 degrees of freedom) weights: heavy tails like trained LLM matrices.
    fn heavy(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let chi: f32 = (0..5).map(|_| rng.normal().powi(2)).sum::<f32>() / 5.0;
                0.02 * rng.normal() / chi.sqrt()
            })
            .collect()
    }

    #[test]
    fn roundtrip_errors_are_within_the_formats_bounds() {
        let mut rng = Rng::new(1);
        let (rows, cols) = (64, 2051);
        let w = heavy(&mut rng, rows * cols);
        for (f, rms_max) in [(WeightFormat::F32, 1e-9), (WeightFormat::F16, 5e-4), (WeightFormat::Q8, 1e-2), (WeightFormat::Q4, 0.2)] {
            let (rms, _) = roundtrip_error(f, &w, rows, cols);
            assert!(rms < rms_max, "{f:?}: relative RMS error {rms}");
        }
        // Padding columns never leak into the logical matrix.
        let p = PackedWeight::pack(WeightFormat::Q4, &w, rows, cols);
        assert_eq!(p.unpack().len(), rows * cols);
    }
}
