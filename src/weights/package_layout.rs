//! Where every byte of a package goes, decided from tensor names, shapes and formats alone: each
//! tensor split by rows into parts that fit a shard, parts filled into shards in the order the
//! tensors are added, each shard's safetensors header and every part's offset. Every writer (the
//! CLI's converter, the random-package writer, the browser's converter) follows this one layout,
//! which is why their packages are byte-identical.

use std::collections::BTreeMap;

use super::manifest::{Manifest, PartEntry, ShardEntry, TensorEntry, FORMAT_VERSION};
use super::quant::{padded_cols, WeightFormat, BLOCK};

/// Room kept in each shard for its safetensors header.
pub const HEADER_SLACK: u64 = 64 << 10;

/// [rows, cols] of the storage matrix of a tensor of this shape.
pub fn matrix_dims(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (1, shape[0]),
        _ => (shape[0], shape[1..].iter().product()),
    }
}

/// Packed bytes of one row (scales included, before the last word's padding).
pub fn row_bytes(format: WeightFormat, cols: usize) -> u64 {
    let kp = padded_cols(cols) as u64;
    let blocks = kp / BLOCK as u64;
    match format {
        WeightFormat::F32 => kp * 4,
        WeightFormat::F16 => kp * 2,
        WeightFormat::Q8 => blocks * 34,
        WeightFormat::Q4 => blocks * 18,
    }
}

/// Packed size of `rows` rows as `PackedWeight::pack` writes them: (bytes, word offset of the
/// scales; the end of the codes for unquantised formats).
pub fn packed_size(format: WeightFormat, rows: usize, cols: usize) -> (u64, usize) {
    let kp = padded_cols(cols);
    let blocks = rows * kp / BLOCK;
    let (codes, scales) = match format {
        WeightFormat::F32 => (rows * kp, 0),
        WeightFormat::F16 => (rows * kp / 2, 0),
        WeightFormat::Q8 => (blocks * 8, blocks.div_ceil(2)),
        WeightFormat::Q4 => (blocks * 4, blocks.div_ceil(2)),
    };
    (((codes + scales) * 4) as u64, codes)
}

/// One part as placed.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedPart {
    pub tensor: String,
    pub part: usize,
    pub shard: usize,
    pub rows: (usize, usize),
    pub bytes: u64,
}

/// A shard's file name, header (the 8-byte length, then JSON padded with spaces to 8 bytes) and
/// size.
#[derive(Clone, Debug)]
pub struct ShardLayout {
    pub file: String,
    pub header: Vec<u8>,
    pub bytes: u64,
    /// (tensor, part) in data order.
    pub parts: Vec<(String, usize)>,
}

pub struct PackageLayout {
    max_shard: u64,
    pub tensors: BTreeMap<String, TensorEntry>,
    /// Parts of each shard, in data order.
    shard_parts: Vec<Vec<(String, usize)>>,
    open_bytes: u64,
}

pub fn shard_file(index: usize) -> String {
    format!("shard-{index:05}.safetensors")
}

impl PackageLayout {
    pub fn new(max_shard: u64) -> PackageLayout {
        PackageLayout { max_shard: max_shard.max(HEADER_SLACK * 2), tensors: BTreeMap::new(), shard_parts: Vec::new(), open_bytes: 0 }
    }

    /// Place a tensor: split into parts of whole rows that fit a shard, each going into the open
    /// shard if it has room, else into a new one.
    pub fn add(&mut self, name: &str, shape: &[usize], format: WeightFormat) -> Vec<PlacedPart> {
        let (rows, cols) = matrix_dims(shape);
        let per_part = ((self.max_shard - HEADER_SLACK) / row_bytes(format, cols).max(1)).max(1) as usize;
        // Parts start at even rows where they can: f16 activations are copied in u32 words, so a
        // split lm_head's logits need even row offsets (see TextModel::logits).
        let per_part = if per_part > 1 { per_part & !1 } else { per_part };
        let mut entry = TensorEntry { shape: shape.to_vec(), rows, cols, format, parts: Vec::new() };
        let mut placed = Vec::new();
        let mut r0 = 0;
        while r0 < rows {
            let r1 = (r0 + per_part).min(rows);
            let (bytes, scale_offset) = packed_size(format, r1 - r0, cols);
            let full = self.open_bytes + bytes + HEADER_SLACK > self.max_shard;
            if self.shard_parts.last().is_none_or(|open| full && !open.is_empty()) {
                self.shard_parts.push(Vec::new());
                self.open_bytes = 0;
            }
            let shard = self.shard_parts.len() - 1;
            let part = entry.parts.len();
            entry.parts.push(PartEntry { shard, offset: 0, bytes, row_start: r0, row_end: r1, scale_offset });
            self.shard_parts[shard].push((name.to_string(), part));
            self.open_bytes += bytes;
            placed.push(PlacedPart { tensor: name.to_string(), part, shard, rows: (r0, r1), bytes });
            r0 = r1;
        }
        self.tensors.insert(name.to_string(), entry);
        placed
    }

    pub fn shard_count(&self) -> usize {
        self.shard_parts.len()
    }

    /// Shard `index`'s layout, once no more parts will join it; fills in its parts' offsets.
    pub fn close_shard(&mut self, index: usize) -> ShardLayout {
        let parts = self.shard_parts[index].clone();
        let key = |name: &str, part: usize| format!("{name}#{part}");
        let mut json = String::from("{");
        let mut at = 0u64;
        for (i, (name, part)) in parts.iter().enumerate() {
            let bytes = self.tensors[name].parts[*part].bytes;
            let k = serde_json::to_string(&key(name, *part)).expect("a string serialises");
            json += &format!("{}{k}:{{\"dtype\":\"U8\",\"shape\":[{bytes}],\"data_offsets\":[{at},{}]}}", if i > 0 { "," } else { "" }, at + bytes);
            at += bytes;
        }
        json.push('}');
        while json.len() % 8 != 0 {
            json.push(' ');
        }
        let data_start = 8 + json.len() as u64;
        let mut at = data_start;
        for (name, part) in &parts {
            let p = &mut self.tensors.get_mut(name).expect("placed tensors are listed").parts[*part];
            p.offset = at;
            at += p.bytes;
        }
        let mut header = (json.len() as u64).to_le_bytes().to_vec();
        header.extend_from_slice(json.as_bytes());
        ShardLayout { file: shard_file(index), header, bytes: at, parts }
    }

    /// The manifest of the finished package (`shards` in order, with their hashes).
    pub fn manifest(&self, model_kind: &str, config: serde_json::Value, tokenizer: Option<String>, shards: Vec<ShardEntry>) -> Manifest {
        Manifest { format_version: FORMAT_VERSION, model_kind: model_kind.into(), config, tokenizer, tensors: self.tensors.clone(), shards }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::quant::PackedWeight;

    #[test]
    fn packed_sizes_are_what_pack_writes() {
        for (rows, cols) in [(1, 1), (3, 33), (7, 64), (5, 95), (2, 2048)] {
            let w = vec![0.5f32; rows * cols];
            for f in [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4] {
                let p = PackedWeight::pack(f, &w, rows, cols);
                assert_eq!(packed_size(f, rows, cols), (p.bytes() as u64, p.scale_offset), "{f:?} {rows}x{cols}");
            }
        }
    }

    #[test]
    fn parts_fill_shards_and_headers_parse() {
        let mut l = PackageLayout::new(HEADER_SLACK * 2);
        let a = l.add("a", &[301, 2048], WeightFormat::Q8); // 2176 B per row: 30 rows per part
        assert!(a.len() == 11 && a.iter().all(|p| p.rows.1 - p.rows.0 <= 30 && p.rows.0 % 2 == 0), "{a:?}");
        l.add("b", &[3], WeightFormat::F16);
        for i in 0..l.shard_count() {
            let s = l.close_shard(i);
            let n = u64::from_le_bytes(s.header[..8].try_into().unwrap()) as usize;
            assert_eq!(s.header.len(), 8 + n);
            assert_eq!(s.header.len() % 8, 0);
            let mut file = s.header.clone();
            file.resize(s.bytes as usize, 0);
            let st = safetensors::SafeTensors::deserialize(&file).unwrap();
            assert_eq!(st.len(), s.parts.len());
            for (name, part) in &s.parts {
                let p = &l.tensors[name].parts[*part];
                let info = st.tensor(&format!("{name}#{part}")).unwrap();
                assert_eq!(info.data().len() as u64, p.bytes);
                assert_eq!(p.shard, i);
            }
        }
    }
}
