//! The copy floor: the device's memory bandwidth as a copy reaches it, the yardstick of every
//! "% of copy floor" figure. One `copy_buffer_to_buffer` of a mid-size buffer measures the
//! driver's copy path, which on a datacenter GPU reaches a fraction of the memory's bandwidth
//! (0.85 TB/s on a 4.8 TB/s H200). The probe instead times, on buffers as large as the adapter
//! allows (up to 1 GiB each on a GPU), the streaming-copy kernel (`kernels::copy`: vec4 loads, a
//! grid-stride loop) over several grid sizes and loads in flight per thread, and the buffer copy;
//! the floor is the best of them (read + write bytes per second, GPU timestamps where the adapter
//! has them). Each is compared with the adapter's published memory bandwidth where known.

use super::{time, Row};
use crate::gpu::{DType, Gpu, Result};
use crate::kernels::copy::{copy_words, CopyGrid, COPY_WG, ITEMS};
use crate::testing::Scale;

/// The grids the probe times: workgroups (0: one pass over the buffer, capped at the
/// per-dimension limit) x vec4 loads in flight per thread.
const GROUPS: [u32; 4] = [1024, 4096, 16384, 0];

/// The probe's buffer size (each of source and destination): 1 GiB on a GPU at full scale,
/// 256 MiB small; 128 / 32 MiB on a CPU adapter; never more than the adapter can bind.
pub fn probe_bytes(gpu: &Gpu, scale: Scale) -> u64 {
    let cpu = gpu.info.device_type == "Cpu";
    let cap: u64 = match (cpu, scale) {
        (false, Scale::Full) => 1 << 30,
        (false, Scale::Small) => 256 << 20,
        (true, Scale::Full) => 128 << 20,
        (true, Scale::Small) => 32 << 20,
    };
    // A whole number of MiB (of vec4s below 1 MiB) within the binding and buffer limits.
    let limit = gpu.max_buffer_bytes();
    let bytes = cap.min(limit);
    if bytes >= 1 << 20 {
        bytes >> 20 << 20
    } else {
        bytes / 16 * 16
    }
}

/// Time the copy kernel on every grid of the probe and `copy_buffer_to_buffer`, on two buffers of
/// `bytes` each; one row per configuration, named `copy kernel ...` / `copy_buffer_to_buffer ...`
/// (bytes: read + write).
pub fn probe(gpu: &Gpu, bytes: u64, reps: usize) -> Result<Vec<Row>> {
    let words = (bytes / 4) as usize;
    let a = gpu.alloc(&[words], DType::U32)?;
    let b = gpu.alloc(&[words], DType::U32)?;
    let mib = bytes >> 20;
    let moved = 2.0 * (words * 4) as f64;
    let mut rows = Vec::new();
    let n4 = (words / 4) as u64;
    let mut seen = Vec::new();
    for items in ITEMS {
        for groups in GROUPS {
            let grid = CopyGrid { groups, items };
            // Grids larger than one pass over the buffer shrink to it: time each grid once.
            let g = crate::kernels::copy::groups(grid, n4, gpu.limits.max_compute_workgroups_per_dimension);
            if seen.contains(&(g, items)) {
                continue;
            }
            seen.push((g, items));
            let (ms, d) = time(gpu, reps, |rec| copy_words(rec, &a, &b, words, grid))?;
            let pass = if u64::from(g) * u64::from(COPY_WG * items) >= n4 { " (1 pass)" } else { "" };
            rows.push(Row { name: format!("copy kernel {mib} MiB {g} wg{pass} x {items} vec4"), ms, bytes: moved, flops: 0.0, dispatches: d });
        }
    }
    let (ms, _) = time(gpu, reps, |rec| {
        rec.copy(&a, 0, &b, 0, (words * 4) as u64);
        Ok(())
    })?;
    rows.push(Row { name: format!("copy_buffer_to_buffer {mib} MiB"), ms, bytes: moved, flops: 0.0, dispatches: 0 });
    Ok(rows)
}

/// Whether a row is one of the probe's (named `copy kernel ...` or `copy_buffer_to_buffer ...`).
fn is_probe_row(r: &Row) -> bool {
    r.name.starts_with("copy kernel ") || r.name.starts_with("copy_buffer_to_buffer ")
}

/// The probe's best row, the copy floor: the fastest of the probe's rows among `rows`.
pub fn copy_floor(rows: &[Row]) -> Option<&Row> {
    rows.iter().filter(|r| is_probe_row(r)).max_by(|a, b| a.gbps().total_cmp(&b.gbps()))
}

/// Run the probe and keep its best row only (the benches of whole models).
pub fn copy_floor_row(gpu: &Gpu, bytes: u64, reps: usize) -> Result<Row> {
    let rows = probe(gpu, bytes, reps)?;
    let best = copy_floor(&rows).map(|r| r.name.clone());
    Ok(rows.into_iter().find(|r| Some(&r.name) == best.as_ref()).expect("the probe has rows"))
}

/// Published memory bandwidths (GB/s) of known adapters, from the vendors' spec sheets. A row
/// matches when each of its words is a word of the adapter's name (lower case, split at anything
/// not a letter or digit); the first match wins, so the more specific rows come first.
const PUBLISHED: &[(&[&str], f64, &str)] = &[
    // NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200): H200 SXM and H200 NVL, 4.8 TB/s.
    (&["h200"], 4800.0, "NVIDIA H200"),
    // NVIDIA GH200 Grace Hopper datasheet: 4.9 TB/s (144 GB HBM3e; the 96 GB HBM3 part 4 TB/s).
    (&["gh200"], 4900.0, "NVIDIA GH200 (HBM3e)"),
    // NVIDIA H100 datasheet (nvidia.com/en-us/data-center/h100): H100 SXM 3.35 TB/s, H100 NVL
    // 3.9 TB/s, H100 PCIe 2 TB/s (2.0 TB/s for the 80 GB PCIe card).
    (&["h100", "pcie"], 2000.0, "NVIDIA H100 PCIe"),
    (&["h100", "nvl"], 3900.0, "NVIDIA H100 NVL"),
    (&["h100"], 3350.0, "NVIDIA H100 SXM"),
    // NVIDIA A100 datasheet: 80 GB PCIe 1,935 GB/s, 80 GB SXM 2,039 GB/s, 40 GB 1,555 GB/s.
    (&["a100", "80gb", "pcie"], 1935.0, "NVIDIA A100 80GB PCIe"),
    (&["a100", "80gb"], 2039.0, "NVIDIA A100 80GB SXM"),
    (&["a100"], 1555.0, "NVIDIA A100 40GB"),
    // NVIDIA L40S / L40 datasheets: 864 GB/s; L4 datasheet: 300 GB/s; A10: 600 GB/s; T4: 320 GB/s;
    // V100 SXM2: 900 GB/s.
    (&["l40s"], 864.0, "NVIDIA L40S"),
    (&["l40"], 864.0, "NVIDIA L40"),
    (&["l4"], 300.0, "NVIDIA L4"),
    (&["a10"], 600.0, "NVIDIA A10"),
    (&["t4"], 320.0, "NVIDIA T4"),
    (&["v100"], 900.0, "NVIDIA V100 SXM2"),
    // NVIDIA GeForce specifications (nvidia.com): RTX 4090 1,008 GB/s (21 Gbps x 384 bit), RTX
    // 4080 SUPER 736 GB/s, RTX 4080 716.8 GB/s, RTX 3090 Ti 1,008 GB/s, RTX 3090 936 GB/s.
    (&["rtx", "4090"], 1008.0, "NVIDIA GeForce RTX 4090"),
    (&["rtx", "4080", "super"], 736.0, "NVIDIA GeForce RTX 4080 SUPER"),
    (&["rtx", "4080"], 716.8, "NVIDIA GeForce RTX 4080"),
    (&["rtx", "3090", "ti"], 1008.0, "NVIDIA GeForce RTX 3090 Ti"),
    (&["rtx", "3090"], 936.0, "NVIDIA GeForce RTX 3090"),
    // AMD Instinct MI300X data sheet: 5.3 TB/s; MI250X: 3.2 TB/s. Radeon RX 7900 XTX 960 GB/s,
    // RX 7900 XT 800 GB/s (amd.com product specifications).
    (&["mi300x"], 5300.0, "AMD Instinct MI300X"),
    (&["mi250x"], 3277.0, "AMD Instinct MI250X"),
    (&["7900", "xtx"], 960.0, "AMD Radeon RX 7900 XTX"),
    (&["7900", "xt"], 800.0, "AMD Radeon RX 7900 XT"),
    // Intel Arc A770 16 GB: 560 GB/s (ark.intel.com; the 8 GB card: 512 GB/s).
    (&["arc", "a770"], 560.0, "Intel Arc A770 16GB"),
    // Apple (apple.com newsroom and tech specs): unified memory bandwidth. M3 Max and M4 Max: the
    // full chips (the binned 30-core / 32-core GPU parts: 300 and 410 GB/s).
    (&["m1", "ultra"], 800.0, "Apple M1 Ultra"),
    (&["m1", "max"], 400.0, "Apple M1 Max"),
    (&["m1", "pro"], 200.0, "Apple M1 Pro"),
    (&["apple", "m1"], 68.25, "Apple M1"),
    (&["m2", "ultra"], 800.0, "Apple M2 Ultra"),
    (&["m2", "max"], 400.0, "Apple M2 Max"),
    (&["m2", "pro"], 200.0, "Apple M2 Pro"),
    (&["apple", "m2"], 100.0, "Apple M2"),
    (&["m3", "ultra"], 819.0, "Apple M3 Ultra"),
    (&["m3", "max"], 400.0, "Apple M3 Max"),
    (&["m3", "pro"], 150.0, "Apple M3 Pro"),
    (&["apple", "m3"], 100.0, "Apple M3"),
    (&["m4", "max"], 546.0, "Apple M4 Max"),
    (&["m4", "pro"], 273.0, "Apple M4 Pro"),
    (&["apple", "m4"], 120.0, "Apple M4"),
];

/// The published memory bandwidth (GB/s) of the adapter named `name`, and what it matched.
pub fn published(name: &str) -> Option<(f64, &'static str)> {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    PUBLISHED.iter().find(|(needles, _, _)| needles.iter().all(|n| words.contains(n))).map(|&(_, gbps, what)| (gbps, what))
}

/// GB/s as text: TB/s from 1000 GB/s.
pub fn rate(gbps: f64) -> String {
    if gbps >= 1000.0 {
        format!("{:.2} TB/s", gbps / 1000.0)
    } else {
        format!("{gbps:.1} GB/s")
    }
}

/// "measured 3.90 TB/s = 81 % of the published 4.80 TB/s (NVIDIA H200)", or the measured rate and
/// "no published figure for this adapter".
pub fn versus_published(adapter: &str, gbps: f64) -> String {
    match published(adapter) {
        Some((p, what)) => format!("measured {} = {:.0} % of the published {} ({what})", rate(gbps), 100.0 * gbps / p, rate(p)),
        None => format!("measured {}; no published figure for this adapter", rate(gbps)),
    }
}

#[cfg(test)]
mod tests {
    use super::published;

    #[test]
    fn adapter_names_match_their_published_figure() {
        let cases = [
            ("NVIDIA H200", Some(4800.0)),
            ("NVIDIA H100 80GB HBM3", Some(3350.0)),
            ("NVIDIA H100 PCIe", Some(2000.0)),
            ("NVIDIA H100 NVL", Some(3900.0)),
            ("NVIDIA A100-SXM4-80GB", Some(2039.0)),
            ("NVIDIA A100 80GB PCIe", Some(1935.0)),
            ("NVIDIA A100-SXM4-40GB", Some(1555.0)),
            ("NVIDIA L4", Some(300.0)),
            ("NVIDIA L40S", Some(864.0)),
            ("NVIDIA GeForce RTX 4090", Some(1008.0)),
            ("NVIDIA GeForce RTX 4080 SUPER", Some(736.0)),
            ("NVIDIA GeForce RTX 3090", Some(936.0)),
            ("Apple M1", Some(68.25)),
            ("Apple M2 Max", Some(400.0)),
            ("Apple M3 Pro", Some(150.0)),
            ("AMD Instinct MI300X", Some(5300.0)),
            ("AMD Radeon RX 7900 XTX", Some(960.0)),
            ("Intel(R) Arc(TM) A770 Graphics", Some(560.0)),
            ("llvmpipe (LLVM 15.0.7, 256 bits)", None),
            ("NVIDIA GeForce RTX 4070", None),
        ];
        for (name, want) in cases {
            assert_eq!(published(name).map(|p| p.0), want, "{name}");
        }
    }
}
