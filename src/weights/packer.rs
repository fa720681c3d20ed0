//! Packs one part of a tensor as its source rows arrive, so that a conversion holds only a slice of
//! a tensor at a time (the 16 384-wide connector matrix is 512 MB in bf16): each chunk of rows
//! gives its codes at once; the scales (a seventeenth of a q8 part, a ninth of a q4 one) follow
//! at the end. The bytes are exactly `PackedWeight::pack`'s for the whole part.

use half::f16;
use safetensors::tensor::Dtype;

use super::error::{PResult, PackageError};
use super::quant::{scale_words, WeightFormat};
use super::source::{element_bytes, to_f32};

pub struct PartPacker {
    name: String,
    format: WeightFormat,
    dtype: Dtype,
    cols: usize,
    rows_left: usize,
    scales: Vec<f16>,
}

impl PartPacker {
    /// A part of `rows` rows of `cols` values, read in the upstream `dtype`.
    pub fn new(name: &str, format: WeightFormat, dtype: Dtype, rows: usize, cols: usize) -> PResult<PartPacker> {
        element_bytes(name, dtype)?;
        Ok(PartPacker { name: name.into(), format, dtype, cols, rows_left: rows, scales: Vec::new() })
    }

    /// Bytes of one source row.
    pub fn source_row_bytes(&self) -> usize {
        self.cols * element_bytes(&self.name, self.dtype).expect("checked in new")
    }

    /// Pack whole source rows (raw little-endian bytes); returns their codes.
    pub fn push(&mut self, src: &[u8]) -> PResult<Vec<u8>> {
        let row = self.source_row_bytes();
        let rows = src.len() / row.max(1);
        if src.len() % row != 0 || rows > self.rows_left {
            return Err(PackageError::Safetensors {
                file: self.name.clone(),
                msg: format!("{} bytes are not whole rows of {row} bytes within the {} rows left", src.len(), self.rows_left),
            });
        }
        let values = to_f32(&self.name, self.dtype, src)?;
        #[cfg(not(target_arch = "wasm32"))]
        let (codes, scales) = super::quant::pack_rows_parallel(self.format, &values, rows, self.cols);
        #[cfg(target_arch = "wasm32")]
        let (codes, scales) = super::quant::pack_rows(self.format, &values, rows, self.cols);
        self.scales.extend(scales);
        self.rows_left -= rows;
        Ok(bytemuck::cast_slice(&codes).to_vec())
    }

    /// The scales, once every row was pushed.
    pub fn finish(self) -> PResult<Vec<u8>> {
        if self.rows_left != 0 {
            return Err(PackageError::Safetensors { file: self.name, msg: format!("{} rows were never packed", self.rows_left) });
        }
        Ok(scale_words(&self.scales).flat_map(u32::to_le_bytes).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::weights::quant::PackedWeight;

    /// Rows pushed in uneven chunks give `pack`'s bytes, for every format and odd block counts.
    #[test]
    fn chunked_packing_equals_whole_packing() {
        let mut rng = Rng::new(5);
        for (rows, cols) in [(7, 33), (13, 95), (1, 4000)] {
            let v: Vec<f32> = (0..rows * cols).map(|_| rng.uniform(-2.0, 2.0)).collect();
            let bf: Vec<u8> = v.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
            let exact: Vec<f32> = bf.chunks(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect();
            for format in [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4] {
                let whole = PackedWeight::pack(format, &exact, rows, cols);
                let mut p = PartPacker::new("t", format, Dtype::BF16, rows, cols).unwrap();
                let row = p.source_row_bytes();
                let mut out = Vec::new();
                let mut r = 0;
                for step in [2, 1, 3].iter().cycle() {
                    if r >= rows {
                        break;
                    }
                    let n = (*step).min(rows - r);
                    out.extend(p.push(&bf[r * row..(r + n) * row]).unwrap());
                    r += n;
                }
                out.extend(p.finish().unwrap());
                assert!(out == bytemuck::cast_slice::<u32, u8>(&whole.words), "{format:?} {rows}x{cols}");
            }
        }
        let mut p = PartPacker::new("t", WeightFormat::Q4, Dtype::F32, 2, 3).unwrap();
        assert!(p.push(&[0u8; 5]).is_err());
        p.push(&[0u8; 12]).unwrap();
        assert!(p.finish().is_err(), "a row was never pushed");
        assert!(PartPacker::new("t", WeightFormat::Q4, Dtype::I64, 2, 3).is_err());
    }
}
