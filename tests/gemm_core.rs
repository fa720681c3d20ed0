//! The GEMM core shared by matmul and conv (shaders/gemm_core.wgsl) at every candidate tiling the
//! adapter can run, on the f32 and f16 paths, against the f64 references with the kernel suite's
//! tolerances; every tiling gives the same bits (each output sums in the same k order); and the
//! per-device choice is a valid candidate, measured once and memoised. Sizes are multiples of no
//! tile. `KERNEL_SEED` replays a seed; `ALLOW_NO_F16=1` accepts an adapter without shader-f16.

use spatial_mllm_web::gpu::{DType, GemmTile, Gpu, GpuOptions, Recorder, Tensor, TileSource};
use spatial_mllm_web::kernels::conv::{conv2d, conv_transpose2d, ConvEpilogue, ImageView};
use spatial_mllm_web::kernels::gemm_tune::tune_gemm;
use spatial_mllm_web::kernels::tuning_memo::{self, GemmTiling};
use spatial_mllm_web::native::tuning_store;
use spatial_mllm_web::kernels::matmul::{linear_with, Activation, Epilogue, Path};
use spatial_mllm_web::testing::reference::{self as cpu, Nhwc};
use spatial_mllm_web::testing::{compare, Rng};
use spatial_mllm_web::weights::{PackedWeight, Weight, WeightFormat};

const FORMATS: [WeightFormat; 4] = [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4];

fn seed() -> u64 {
    std::env::var("KERNEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64)
}

/// A poisoning device on the f32 or the f16 path (None: f16 asked, not available, and accepted).
fn device(f16: bool) -> Option<Gpu> {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: f16, allow_subgroups: true, allow_coop_matrix: true, poison: true })).expect("a GPU adapter");
    if f16 && gpu.act != DType::F16 {
        assert_eq!(std::env::var("ALLOW_NO_F16").as_deref(), Ok("1"), "adapter {} has no shader-f16 (set ALLOW_NO_F16=1 to accept)", gpu.info.name);
        println!("adapter {} has no shader-f16: f16 path NOT tested", gpu.info.name);
        return None;
    }
    Some(gpu)
}

/// As the kernel suite: inputs rounded as stored, f16 outputs allowed 4e-3.
fn as_stored(g: &Gpu, v: Vec<f32>) -> Vec<f32> {
    match g.act {
        DType::F16 => v.into_iter().map(|x| half::f16::from_f32(x).to_f32()).collect(),
        _ => v,
    }
}

fn tol(g: &Gpu) -> f64 {
    if g.act == DType::F16 {
        4e-3
    } else {
        1e-4
    }
}

fn run(g: &Gpu, f: impl FnOnce(&mut Recorder) -> spatial_mllm_web::gpu::Result<Tensor>) -> Vec<f32> {
    let mut rec = Recorder::new(g);
    let t = f(&mut rec).unwrap();
    rec.submit().unwrap();
    pollster::block_on(g.read_f32(&t)).unwrap()
}

/// One GEMM problem's inputs and expected output.
struct MatmulCase {
    label: String,
    m: usize,
    n: usize,
    epi: usize,
    x: Tensor,
    w: Weight,
    bias: Tensor,
    aux: Tensor,
    want: Vec<f64>,
}

fn matmul_cases(g: &Gpu, r: &mut Rng) -> Vec<MatmulCase> {
    // (M, N, K): K not a multiple of 4 (scalar X loads), nor of 16 (a partial last step); more
    // rows and columns than the largest tile (vec4 X loads). Epilogues by turn.
    let sizes = [(37, 75, 83), (130, 259, 300)];
    let mut out = Vec::new();
    for (fi, &fmt) in FORMATS.iter().enumerate() {
        for (si, &(m, n, k)) in sizes.iter().enumerate() {
            let epi = (fi + si) % 4;
            let x = as_stored(g, r.normals(m * k, 1.0));
            let packed = PackedWeight::pack(fmt, &r.normals(n * k, 0.05), n, k);
            let wd = packed.unpack();
            let bias = r.normals(n, 0.1);
            let aux = as_stored(g, r.normals(m * n, 1.0));
            let mut want = cpu::matmul(&x, &wd, m, n, k);
            for (i, v) in want.iter_mut().enumerate() {
                let j = i % n;
                *v = match epi {
                    0 => *v,
                    1 => cpu::gelu(*v + bias[j] as f64),
                    2 => cpu::silu(*v + bias[j] as f64) * aux[i] as f64,
                    _ => *v + aux[i] as f64,
                };
            }
            out.push(MatmulCase {
                label: format!("{m}x{n}x{k} {} epi{epi}", fmt.name()),
                m,
                n,
                epi,
                x: g.upload_act(&x, &[m, k]).unwrap(),
                w: Weight::upload(g, &packed, "w").unwrap(),
                bias: g.upload_f32(&bias, &[n]).unwrap(),
                aux: g.upload_act(&aux, &[m, n]).unwrap(),
                want,
            });
        }
    }
    out
}

fn run_matmul(g: &Gpu, c: &MatmulCase) -> Vec<f32> {
    run(g, |rec| {
        let e = match c.epi {
            0 => Epilogue::none(),
            1 => Epilogue::bias(Some(&c.bias)).with_act(Activation::Gelu),
            2 => Epilogue::bias(Some(&c.bias)).with_act(Activation::Silu).with_mul(&c.aux),
            _ => Epilogue::none().with_add(&c.aux),
        };
        let y = linear_with(rec, &c.x, &c.w, e, Path::Gemm)?;
        assert_eq!(y.shape, [c.m, c.n]);
        Ok(y)
    })
}

/// One convolution problem (as the DPT heads use them) and its expected output.
struct ConvCase {
    label: String,
    transpose: bool,
    d: Nhwc,
    k: usize,
    stride: usize,
    relu_in: bool,
    lead: usize,
    x: Tensor,
    w: Weight,
    bias: Tensor,
    res: Tensor,
    add: Tensor,
    want: Vec<f64>,
}

fn conv_cases(g: &Gpu, r: &mut Rng) -> Vec<ConvCase> {
    let d = |f, h, w, c| Nhwc { f, h, w, c };
    // (input, c_out, k, stride, transposed, relu_in, lead tokens, format)
    let shapes = [
        (d(2, 13, 11, 37), 70, 3, 1, false, true, 0, WeightFormat::F16),
        (d(1, 20, 17, 8), 130, 3, 1, false, false, 0, WeightFormat::Q8),
        (d(2, 9, 7, 19), 5, 3, 2, false, false, 0, WeightFormat::F32),
        (d(1, 4, 6, 33), 66, 3, 2, false, true, 0, WeightFormat::Q4),
        (d(3, 5, 6, 67), 36, 1, 1, false, false, 5, WeightFormat::F16),
        (d(2, 5, 7, 3), 10, 3, 1, false, false, 0, WeightFormat::Q8),
        (d(2, 5, 7, 37), 19, 4, 4, true, false, 0, WeightFormat::F16),
        (d(1, 3, 4, 70), 66, 2, 2, true, true, 0, WeightFormat::Q8),
        (d(1, 4, 3, 8), 8, 4, 4, true, false, 5, WeightFormat::F32),
    ];
    let mut out = Vec::new();
    for (i, (d, c_out, k, stride, transpose, relu_in, lead, fmt)) in shapes.into_iter().enumerate() {
        let tokens = lead + d.h * d.w;
        let full = as_stored(g, r.normals(d.f * tokens * d.c, 1.0));
        let mut x: Vec<f32> = (0..d.f).flat_map(|f| full[(f * tokens + lead) * d.c..(f + 1) * tokens * d.c].to_vec()).collect();
        if relu_in {
            x.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        let (rows, cols) = if transpose { (d.c, c_out * k * k) } else { (c_out, d.c * k * k) };
        let packed = PackedWeight::pack(fmt, &r.normals(rows * cols, 0.1), rows, cols);
        let wd = packed.unpack();
        let (mut want, od) = if transpose { cpu::conv_transpose_nhwc(&x, d, &wd, c_out, k, k) } else { cpu::conv2d_nhwc(&x, d, &wd, c_out, k, stride, (k - 1) / 2) };
        let bias = r.normals(c_out, 0.3);
        let res = as_stored(g, r.normals(od.len(), 1.0));
        let add = as_stored(g, r.normals(od.len(), 1.0));
        // Epilogues by turn: bias + ReLU; bias + relu(residual) + add; none.
        for (j, v) in want.iter_mut().enumerate() {
            match i % 3 {
                0 => *v = (*v + bias[j % c_out] as f64).max(0.0),
                1 => *v += bias[j % c_out] as f64 + (res[j] as f64).max(0.0) + add[j] as f64,
                _ => {}
            }
        }
        out.push(ConvCase {
            label: format!("{}{}x{}x{}x{} -> {c_out} k{k} s{stride} {}", if transpose { "T " } else { "" }, d.f, d.h, d.w, d.c, fmt.name()),
            transpose,
            d,
            k,
            stride,
            relu_in,
            lead,
            x: g.upload_act(&full, &[d.f, tokens, d.c]).unwrap(),
            w: Weight::upload(g, &packed, "w").unwrap(),
            bias: g.upload_f32(&bias, &[c_out]).unwrap(),
            res: g.upload_act(&res, &[od.f, od.h, od.w, od.c]).unwrap(),
            add: g.upload_act(&add, &[od.f, od.h, od.w, od.c]).unwrap(),
            want,
        });
    }
    out
}

fn run_conv(g: &Gpu, c: &ConvCase, i: usize) -> Vec<f32> {
    run(g, |rec| {
        let d = c.d;
        let tokens = c.lead + d.h * d.w;
        let view = ImageView { t: &c.x, frames: d.f, h: d.h, w: d.w, c: d.c, frame_stride: tokens * d.c, off: c.lead * d.c };
        let epi = match i % 3 {
            0 => ConvEpilogue { bias: Some(&c.bias), relu: true, ..Default::default() },
            1 => ConvEpilogue { bias: Some(&c.bias), res_relu: Some(&c.res), add: Some(&c.add), ..Default::default() },
            _ => ConvEpilogue::default(),
        };
        if c.transpose {
            conv_transpose2d(rec, view, &c.w, c.k, c.relu_in, epi)
        } else {
            conv2d(rec, view, &c.w, c.k, c.stride, c.relu_in, epi)
        }
    })
}

/// Every candidate tiling: matmul and conv within tolerance of the reference, and bit for bit
/// what the default tiling computes.
fn every_tile(f16: bool) {
    let Some(g) = device(f16) else { return };
    let seed = seed();
    let mut r = Rng::new(seed ^ 0x6E6D);
    let tiles = g.gemm_candidates();
    assert_eq!(tiles.first(), Some(&GemmTile::DEFAULT), "the default tiling fits every WebGPU adapter");
    assert_eq!(tiles.len(), GemmTile::CANDIDATES.len(), "all candidates fit WebGPU's default limits");
    let mm = matmul_cases(&g, &mut r);
    let cv = conv_cases(&g, &mut r);
    let mut first: Vec<Vec<f32>> = Vec::new();
    for (ti, &tile) in tiles.iter().enumerate() {
        g.pin_gemm_tile(tile).unwrap();
        assert_eq!(g.gemm_tile(), tile);
        let mut outs = Vec::new();
        for c in &mm {
            let got = run_matmul(&g, c);
            let note = compare(&format!("[{:?}] tile {tile} matmul {}", g.act, c.label), &got, &c.want, tol(&g)).unwrap_or_else(|e| panic!("{e} (seed {seed})"));
            println!("{note}");
            outs.push(got);
        }
        for (i, c) in cv.iter().enumerate() {
            let got = run_conv(&g, c, i);
            let note = compare(&format!("[{:?}] tile {tile} conv {}", g.act, c.label), &got, &c.want, tol(&g)).unwrap_or_else(|e| panic!("{e} (seed {seed})"));
            println!("{note}");
            outs.push(got);
        }
        if ti == 0 {
            first = outs;
        } else {
            let labels = mm.iter().map(|c| &c.label).chain(cv.iter().map(|c| &c.label));
            for ((a, b), label) in first.iter().zip(&outs).zip(labels) {
                let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{label}: tile {tile} differs from {} in some bits (seed {seed})", tiles[0]);
            }
        }
    }
    g.check().unwrap();
}

#[test]
fn every_tile_f32_path() {
    every_tile(false);
}

#[test]
fn every_tile_f16_path() {
    every_tile(true);
}

/// The GEMM on matrix units (the cooperative-matrix core), where the device runs it: matmul and
/// conv within the f16 path's tolerance of the reference. It is the device's choice there, and
/// a plain tiling can still be pinned. An adapter without matrix units runs the plain kernels and
/// says why; `REQUIRE_COOP=1` (tools/coop-lavapipe.sh) makes that a failure.
#[test]
fn matrix_units_f16_path() {
    let Some(g) = device(true) else { return };
    let Some(tile) = g.coop_tile() else {
        let why = g.coop_unavailable().unwrap();
        assert_ne!(std::env::var("REQUIRE_COOP").as_deref(), Ok("1"), "{}: no GEMM on matrix units: {why}", g.info.name);
        println!("{}: the GEMM on matrix units is NOT tested: {why}; the plain kernels run", g.info.name);
        return;
    };
    let seed = seed();
    let mut r = Rng::new(seed ^ 0xC009);
    assert_eq!((g.gemm_tile(), g.gemm_choice().source), (tile, TileSource::MatrixUnits));
    assert_eq!(pollster::block_on(tune_gemm(&g)).unwrap().tile, tile, "matrix units are chosen without measuring");
    for c in matmul_cases(&g, &mut r) {
        let got = run_matmul(&g, &c);
        println!("{}", compare(&format!("[matrix units {tile}] matmul {}", c.label), &got, &c.want, tol(&g)).unwrap_or_else(|e| panic!("{e} (seed {seed})")));
    }
    for (i, c) in conv_cases(&g, &mut r).iter().enumerate() {
        let got = run_conv(&g, c, i);
        println!("{}", compare(&format!("[matrix units {tile}] conv {}", c.label), &got, &c.want, tol(&g)).unwrap_or_else(|e| panic!("{e} (seed {seed})")));
    }
    g.pin_gemm_tile(GemmTile::DEFAULT).unwrap();
    assert_eq!(g.gemm_tile(), GemmTile::DEFAULT);
    g.pin_gemm_tile(tile).unwrap();
    let other = GemmTile::coop(tile.coop * 2);
    assert!(g.pin_gemm_tile(other).is_err(), "a cooperative tiling for another subgroup size is refused");
    g.check().unwrap();
}

/// The measured choice is a candidate the adapter can run, memoised on the device; a pinned
/// tiling is kept, one past the adapter's limits refused.
#[test]
fn tile_choice_is_measured_once() {
    let g = pollster::block_on(Gpu::new(GpuOptions { allow_f16: true, allow_subgroups: true, allow_coop_matrix: true, poison: false })).expect("a GPU adapter");
    let env = std::env::var("SPATIAL_MLLM_GEMM_TILE").is_ok_and(|s| !s.trim().is_empty());
    assert!(!g.gemm_tile_decided());
    if !env {
        assert_eq!(g.gemm_choice().source, TileSource::Default);
        assert_eq!(g.gemm_tile(), GemmTile::DEFAULT);
    }
    let t0 = std::time::Instant::now();
    let c = pollster::block_on(tune_gemm(&g)).unwrap();
    let first_ms = t0.elapsed().as_secs_f64() * 1e3;
    println!("{} ({:?} path): chose {c} in {first_ms:.0} ms", g.info.name, g.act);
    let candidates = g.gemm_candidates();
    assert!(candidates.contains(&c.tile), "{} is not a candidate", c.tile);
    assert!(g.gemm_tile_decided());
    assert_eq!(g.gemm_tile(), c.tile);
    if !env {
        assert_eq!(c.source, TileSource::Measured);
        assert_eq!(c.timings.len(), candidates.len(), "every candidate measured: {c}");
        assert!(c.timings.iter().all(|(t, ms)| candidates.contains(t) && ms.is_finite() && *ms >= 0.0), "{c}");
    }
    // Memoised: the second call returns the same choice without measuring.
    let t1 = std::time::Instant::now();
    let again = pollster::block_on(tune_gemm(&g)).unwrap();
    assert!(t1.elapsed().as_secs_f64() * 1e3 < 50.0, "the second call measured again");
    assert_eq!((again.tile, again.source, again.timings.len()), (c.tile, c.source, c.timings.len()));
    // Pinning replaces it; a tiling past the limits is refused and changes nothing.
    let other = *candidates.iter().find(|t| **t != c.tile).unwrap_or(&c.tile);
    g.pin_gemm_tile(other).unwrap();
    assert_eq!((g.gemm_tile(), g.gemm_choice().source), (other, TileSource::Pinned));
    let huge = GemmTile { bm: 512, bn: 512, bk: 16, tm: 8, tn: 8, coop: 0 };
    assert!(g.pin_gemm_tile(huge).is_err());
    assert_eq!(g.gemm_tile(), other);
    assert_eq!(pollster::block_on(tune_gemm(&g)).unwrap().tile, other, "a pinned tiling is not re-measured");
    g.check().unwrap();
}

/// A measured tiling is remembered per device (`native::tuning_store`): the next device on the same
/// adapter takes it without measuring; a record the device cannot use is measured again and
/// replaced; a tiling set by hand is neither recalled nor stored.
#[test]
fn measured_tiling_is_remembered_per_device() {
    if std::env::var("SPATIAL_MLLM_GEMM_TILE").is_ok_and(|s| !s.trim().is_empty()) {
        panic!("unset SPATIAL_MLLM_GEMM_TILE for this test: it measures");
    }
    let new_gpu =
        || pollster::block_on(Gpu::new(GpuOptions { allow_f16: true, allow_subgroups: true, allow_coop_matrix: false, poison: false })).expect("a GPU adapter");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("tile-store-{}-{nanos}", std::process::id()));
    let store = dir.join(tuning_store::FILE);
    let read = || -> std::collections::BTreeMap<String, String> {
        serde_json::from_slice(&std::fs::read(&store).expect("the store was written")).expect("the store is JSON")
    };

    let first = new_gpu();
    let c = tuning_store::tune(&mut GemmTiling, &first, &store).unwrap();
    assert_eq!(c.source, TileSource::Measured, "{c}");
    let key = tuning_memo::key(&GemmTiling, &first);
    assert!(key.contains(&first.info.name) && key.contains(&first.info.driver), "{key}");
    assert_eq!(read().get(&key), Some(&c.tile.to_string()));

    // A second start on the same adapter: recalled, nothing measured.
    let second = new_gpu();
    let t0 = std::time::Instant::now();
    let again = tuning_store::tune(&mut GemmTiling, &second, &store).unwrap();
    assert_eq!((again.tile, again.source, again.timings.len()), (c.tile, TileSource::Remembered, 0));
    assert!(t0.elapsed().as_secs_f64() < 0.2, "recalling took {:?}", t0.elapsed());

    // A record this device cannot choose (garbled, or past its limits): measured and replaced.
    for bad in ["not a tiling", "512x512x16/8x8"] {
        std::fs::write(&store, serde_json::to_vec(&[(key.clone(), bad.to_string())].into_iter().collect::<std::collections::BTreeMap<_, _>>()).unwrap()).unwrap();
        let third = new_gpu();
        let fresh = tuning_store::tune(&mut GemmTiling, &third, &store).unwrap();
        assert_eq!(fresh.source, TileSource::Measured, "{bad:?} was recalled");
        assert_eq!(read().get(&key), Some(&fresh.tile.to_string()));
    }
    // An unreadable store is only a measurement more.
    std::fs::write(&store, b"{ half a file").unwrap();
    assert_eq!(tuning_store::tune(&mut GemmTiling, &new_gpu(), &store).unwrap().source, TileSource::Measured);

    // A pinned tiling is kept: not recalled over, not stored.
    let pinned = new_gpu();
    let other = *pinned.gemm_candidates().iter().find(|t| t.to_string() != read()[&key]).expect("two candidates");
    pinned.pin_gemm_tile(other).unwrap();
    let before = std::fs::read(&store).unwrap();
    assert_eq!(tuning_store::tune(&mut GemmTiling, &pinned, &store).unwrap().tile, other);
    assert_eq!(std::fs::read(&store).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}
