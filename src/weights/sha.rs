//! SHA-256 whose state can be saved and restored, so that a download hashed as it streams (a
//! checkpoint file checked against the hub's LFS hash) resumes after a page reload without reading
//! its first gigabytes again. The compression function is `sha2`'s; only the buffering and the
//! final padding are here.

use serde::{Deserialize, Serialize};
use sha2::digest::generic_array::GenericArray;

const IV: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResumableSha256 {
    state: [u32; 8],
    /// Bytes hashed so far.
    pub len: u64,
    /// The bytes of an incomplete block (fewer than 64).
    pending: Vec<u8>,
}

impl Default for ResumableSha256 {
    fn default() -> Self {
        ResumableSha256 { state: IV, len: 0, pending: Vec::new() }
    }
}

impl ResumableSha256 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.pending.is_empty() {
            let take = (64 - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.pending);
            sha2::compress256(&mut self.state, &[*GenericArray::from_slice(&block)]);
        }
        let whole = data.len() / 64 * 64;
        let blocks: Vec<GenericArray<u8, _>> = data[..whole].chunks_exact(64).map(|c| *GenericArray::from_slice(c)).collect();
        sha2::compress256(&mut self.state, &blocks);
        self.pending = data[whole..].to_vec();
    }

    /// The digest as lowercase hex (the state is consumed).
    pub fn finish_hex(mut self) -> String {
        let bits = self.len.wrapping_mul(8);
        let mut tail = std::mem::take(&mut self.pending);
        tail.push(0x80);
        while tail.len() % 64 != 56 {
            tail.push(0);
        }
        tail.extend_from_slice(&bits.to_be_bytes());
        let blocks: Vec<GenericArray<u8, _>> = tail.chunks_exact(64).map(|c| *GenericArray::from_slice(c)).collect();
        sha2::compress256(&mut self.state, &blocks);
        self.state.iter().map(|w| format!("{w:08x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn equals_sha2_across_any_split_and_a_save_restore() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for n in [0, 1, 55, 56, 63, 64, 65, 127, 128, 1000] {
            for cut in [0, 1, 63, 64, n / 2, n] {
                let cut = cut.min(n);
                let mut h = ResumableSha256::new();
                h.update(&data[..cut]);
                let saved = serde_json::to_string(&h).unwrap();
                let mut h: ResumableSha256 = serde_json::from_str(&saved).unwrap();
                h.update(&data[cut..n]);
                assert_eq!(h.finish_hex(), hex::encode(Sha256::digest(&data[..n])), "n {n} cut {cut}");
            }
        }
    }
}
