//! CPU preprocessing (src/preprocess) against the reference pipeline: qwen-vl-utils 0.0.14,
//! torch 2.6 / torchvision 0.21, Pillow, numpy and transformers 4.51.3's Qwen2VLImageProcessor.
//! Reference values: tests/fixtures/preprocess (tools/fixtures/make_resize_reference.py) and the
//! processor inputs stored in the model fixtures.

use std::path::Path;

use sha2::{Digest, Sha256};
use spatial_mllm_web::preprocess::{
    frame_indices, frame_indices_with, image_size, linspace_trunc, prepare_frame_list, prepare_image, prepare_video, qwen_image_input, qwen_video_input,
    resize_pil_bicubic, resize_torchvision_bicubic, round_nframes, sa_candidate_indices, smart_nframes, smart_resize, video_budget, video_frame_size, vggt_input,
    FrameListSizing, PilPassOrder, PreprocessError, RgbFrames, TorchFloat, VitInput,
};
use spatial_mllm_web::testing::reference_file::ReferenceFile;

fn reference(dir: &str) -> ReferenceFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir).join("reference.safetensors");
    ReferenceFile::new(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// SplitMix64 bytes, as tools/fixtures/make_resize_reference.py draws its sources.
fn splitmix_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    let mut state = seed;
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A `*.case` entry: (seed, frames, height, width, out height, out width) → source and target.
fn case_source(r: &ReferenceFile, name: &str) -> (RgbFrames, usize, usize) {
    let c: Vec<usize> = r.i64s(name).unwrap().iter().map(|&v| v as usize).collect();
    let data = splitmix_bytes(c[0] as u64, c[1] * c[2] * c[3] * 3);
    (RgbFrames::new(c[1], c[2], c[3], data).unwrap(), c[4], c[5])
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// (bytes that differ, largest difference).
fn diff_u8(a: &[u8], b: &[u8]) -> (usize, u8) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0, 0), |(n, m), (&x, &y)| (n + (x != y) as usize, m.max(x.abs_diff(y))))
}

fn u8_frames(r: &ReferenceFile, name: &str) -> RgbFrames {
    let s = r.shape(name).unwrap();
    let (n, h, w) = if s.len() == 4 { (s[0], s[1], s[2]) } else { (1, s[0], s[1]) };
    RgbFrames::new(n, h, w, r.u8s(name).unwrap()).unwrap()
}

// ------------------------------------------------------------------------------ frame sampling

#[test]
fn frame_count_rounding_and_errors() {
    // Python round(n / 2) * 2: halves go to the even quotient.
    let cases = [(0, 0), (1, 0), (2, 2), (3, 4), (4, 4), (5, 4), (6, 6), (7, 8), (9, 8), (11, 12), (15, 16), (16, 16), (17, 16)];
    for (n, want) in cases {
        assert_eq!(round_nframes(n), want, "round_nframes({n})");
    }
    assert_eq!(smart_nframes(16, 300), Ok(16));
    assert_eq!(smart_nframes(5, 4), Ok(4));
    // upstream: ValueError("nframes should in interval [2, total_frames]") — no padding.
    assert_eq!(smart_nframes(1, 10), Err(PreprocessError::FrameCount { requested: 1, rounded: 0, total: 10 }));
    assert_eq!(smart_nframes(16, 10), Err(PreprocessError::FrameCount { requested: 16, rounded: 16, total: 10 }));
    assert_eq!(smart_nframes(3, 3), Err(PreprocessError::FrameCount { requested: 3, rounded: 4, total: 3 }));
    assert_eq!(smart_nframes(2, 0), Err(PreprocessError::NoFrames));
    assert!(frame_indices(0, 16).is_err());
    let msg = smart_nframes(16, 10).unwrap_err().to_string();
    assert!(msg.contains("[2, 10]"), "{msg}");
}

#[test]
fn frame_indices_hand_computed() {
    // linspace(0, 30, 16) = 0, 2, …, 30 exactly.
    assert_eq!(frame_indices(31, 16).unwrap(), (0..16).map(|k| 2 * k).collect::<Vec<_>>());
    assert_eq!(frame_indices(10, 4).unwrap(), vec![0, 3, 6, 9]);
    // 10 / 3 = 3.33 → 3, 20 / 3 = 6.67 → 7.
    assert_eq!(frame_indices(11, 4).unwrap(), vec![0, 3, 7, 10]);
    // 5 frames requested round to 4 (tie to even): linspace(0, 99, 4) = 0, 33, 66, 99.
    assert_eq!(frame_indices(100, 5).unwrap(), vec![0, 33, 66, 99]);
    // 3 requested round to 4: 0, 1.67, 3.33, 5 → 0, 2, 3, 5.
    assert_eq!(frame_indices(6, 3).unwrap(), vec![0, 2, 3, 5]);
    assert_eq!(frame_indices(8, 8).unwrap(), (0..8).collect::<Vec<_>>());
    assert_eq!(frame_indices(2, 2).unwrap(), vec![0, 1]);
    // With an even count n − 1 is odd, so k · (total − 1) / (n − 1) is never exactly x.5:
    // ties only arise in the count's rounding above. Half-to-even of the value itself:
    assert_eq!(2.5f32.round_ties_even(), 2.0);
    assert_eq!(3.5f32.round_ties_even(), 4.0);
}

#[test]
fn frame_indices_match_torch_linspace() {
    let r = reference("preprocess");
    let cases = r.i64s("indices.cases").unwrap();
    let counts = r.i64s("indices.counts").unwrap();
    for (mode, key) in [(TorchFloat::Fma, "indices.values"), (TorchFloat::Plain, "indices.values.plain")] {
        let want = r.i64s(key).unwrap();
        let (mut at, mut exact_differs, mut checked) = (0, 0, 0);
        for (k, &count) in counts.iter().enumerate() {
            let (total, requested) = (cases[2 * k] as usize, cases[2 * k + 1] as usize);
            let got = frame_indices_with(total, requested, mode);
            if count < 0 {
                assert!(got.is_err(), "({total}, {requested}): upstream raises, got {got:?}");
                continue;
            }
            let got = got.unwrap();
            let w: Vec<usize> = want[at..at + count as usize].iter().map(|&v| v as usize).collect();
            assert_eq!(got, w, "({total}, {requested}) {mode:?}");
            at += count as usize;
            checked += got.len();
            // How often float32 moves an index away from the exact rational one.
            let n = got.len();
            exact_differs += (0..n)
                .filter(|&i| {
                    let (num, den) = ((i * (total - 1)) as u128, (n - 1) as u128);
                    let (q, rem) = (num / den, num % den);
                    let exact = q + (2 * rem > den || (2 * rem == den && q % 2 == 1)) as u128;
                    exact as usize != got[i]
                })
                .count();
        }
        assert_eq!(at, want.len());
        println!("{mode:?}: {checked} indices equal torch; {exact_differs} differ from the exact rational value (float32 linspace)");
    }
}

#[test]
fn sa_candidates_match_numpy() {
    assert_eq!(sa_candidate_indices(5).unwrap(), vec![0, 1, 2, 3, 4]);
    assert_eq!(sa_candidate_indices(0), Err(PreprocessError::NoFrames));
    let c = sa_candidate_indices(129).unwrap();
    assert_eq!((c.len(), c[0], c[1], c[126], c[127]), (128, 0, 1, 126, 128));
    assert_eq!(linspace_trunc(10, 1), vec![0]);
    assert_eq!(linspace_trunc(10, 0), Vec::<usize>::new());
    assert_eq!(linspace_trunc(1, 3), vec![0, 0, 0]);
    let r = reference("preprocess");
    let totals = r.i64s("sa.totals").unwrap();
    let want = r.i64s("sa.values").unwrap();
    let mut at = 0;
    for &t in &totals {
        let got = sa_candidate_indices(t as usize).unwrap();
        let w: Vec<usize> = want[at..at + got.len()].iter().map(|&v| v as usize).collect();
        assert_eq!(got, w, "total {t}");
        at += got.len();
    }
    assert_eq!(at, want.len());
}

// ------------------------------------------------------------------------------ frame sizes

#[test]
fn smart_resize_examples() {
    // Spec §1.1 / §2.1 (H, W): 480 × 640 → 476 × 644 for 16 frames, and the high-resolution cases.
    assert_eq!(video_frame_size(480, 640, 16), Ok((476, 644)));
    assert_eq!(video_frame_size(720, 1280, 16), Ok((560, 1008)));
    assert_eq!(video_frame_size(1080, 1920, 16), Ok((560, 1008)));
    assert_eq!(video_frame_size(1440, 1920, 16), Ok((672, 896)));
    assert_eq!(video_frame_size(968, 1296, 16), Ok((644, 896)));
    // The budgets: 16 frames → [128, 768] · 28²; many frames → the total budget, but never below 1.05 · min.
    let b = video_budget(16);
    assert_eq!((b.min_pixels, b.max_pixels), (100_352.0, 602_112.0));
    assert_eq!(video_budget(256).max_pixels, 602_112.0);
    assert_eq!(video_budget(512).max_pixels, 90_316_800.0 / 512.0 * 2.0);
    assert_eq!(video_budget(2048).max_pixels, 105_369.0);
    // Below the minimum: scaled up and ceiled (61 × 139 → 224 × 504 for 4 frames).
    assert_eq!(video_frame_size(61, 139, 4), Ok((224, 504)));
    // Above the maximum: scaled down and floored.
    assert_eq!(video_frame_size(2160, 3840, 16), Ok((560, 1008)));
    // Round to the nearest multiple of 28, ties to even: 42 = 1.5 · 28 → 56, 70 = 2.5 · 28 → 56.
    assert_eq!(smart_resize(42, 70, 28, 0.0, 1e9), Ok((56, 56)));
    assert_eq!(smart_resize(14, 13, 28, 0.0, 1e9), Ok((28, 28)));
    // Images: the processor's range keeps 61 × 139 near its size (the qwen2.5-vl fixture: 56 × 140).
    assert_eq!(image_size(61, 139), Ok((56, 140)));
    assert!(matches!(image_size(20, 139), Err(PreprocessError::Size { .. })));
    // Aspect ratio: 200 is allowed, above is not.
    assert!(smart_resize(1, 200, 28, 0.0, 1e9).is_ok());
    let e = smart_resize(1, 201, 28, 0.0, 1e9).unwrap_err();
    assert!(matches!(e, PreprocessError::AspectRatio { height: 1, width: 201, .. }), "{e}");
    assert!(e.to_string().contains("smaller than 200"));
    assert!(matches!(smart_resize(100, 100, 28, 10.0, 5.0), Err(PreprocessError::Budget { .. })));
    assert!(matches!(smart_resize(0, 100, 28, 0.0, 1e9), Err(PreprocessError::Size { .. })));
}

#[test]
fn smart_resize_matches_qwen_vl_utils() {
    let r = reference("preprocess");
    let v = r.i64s("sizes.video").unwrap();
    for c in v.chunks_exact(5) {
        let (h, w, nf) = (c[0] as usize, c[1] as usize, c[2] as usize);
        let got = video_frame_size(h, w, nf);
        if c[3] < 0 {
            assert!(got.is_err(), "{h} x {w}, {nf} frames: upstream raises, got {got:?}");
        } else {
            assert_eq!(got, Ok((c[3] as usize, c[4] as usize)), "{h} x {w}, {nf} frames");
        }
    }
    let im = r.i64s("sizes.image").unwrap();
    for c in im.chunks_exact(4) {
        let (h, w) = (c[0] as usize, c[1] as usize);
        let got = image_size(h, w);
        if c[2] < 0 {
            assert!(got.is_err(), "image {h} x {w}: the processor raises, got {got:?}");
        } else {
            assert_eq!(got, Ok((c[2] as usize, c[3] as usize)), "image {h} x {w}");
        }
    }
    println!("{} video and {} image sizes equal upstream", v.len() / 5, im.len() / 4);
}

// ------------------------------------------------------------------------------ resize

#[test]
fn splitmix_matches_the_generator() {
    let r = reference("preprocess");
    assert_eq!(splitmix_bytes(1, 64), r.u8s("splitmix.seed1.first64").unwrap());
}

#[test]
fn torchvision_resize_is_bit_exact() {
    let r = reference("preprocess");
    let mut total = 0;
    for i in 0.. {
        let name = format!("tv.{i}.case");
        if !r.has(&name) {
            break;
        }
        let (src, oh, ow) = case_source(&r, &name);
        for (mode, key) in [(TorchFloat::Fma, format!("tv.{i}.out")), (TorchFloat::Plain, format!("tv.{i}.out.plain"))] {
            let got = resize_torchvision_bicubic(&src, oh, ow, mode).unwrap();
            let want = r.u8s(&key).unwrap();
            let (n, max) = diff_u8(&got.data, &want);
            println!("tv.{i} {mode:?}: {}x{}x{} -> {oh}x{ow}: {n} of {} bytes differ (max {max})", src.count, src.height, src.width, want.len());
            assert_eq!(n, 0, "tv.{i} {mode:?}");
            total += want.len();
        }
    }
    // Full-size frames: SHA-256 of the whole output plus the first rows for a count.
    for i in 0.. {
        let name = format!("tvbig.{i}.case");
        if !r.has(&name) {
            break;
        }
        let (src, oh, ow) = case_source(&r, &name);
        for (mode, sfx) in [(TorchFloat::Fma, ""), (TorchFloat::Plain, ".plain")] {
            let t = std::time::Instant::now();
            let got = resize_torchvision_bicubic(&src, oh, ow, mode).unwrap();
            let ms = t.elapsed().as_millis();
            let strip = r.u8s(&format!("tvbig.{i}.strip{sfx}")).unwrap();
            let (n, max) = diff_u8(&got.data[..strip.len()], &strip);
            let digest_ok = sha256_hex(&got.data) == r.metadata(&format!("tvbig.{i}.sha256{sfx}")).unwrap();
            println!(
                "tvbig.{i} {mode:?}: {}x{}x{} -> {oh}x{ow} in {ms} ms: digest {}, first rows {n} bytes differ (max {max})",
                src.count,
                src.height,
                src.width,
                if digest_ok { "equal" } else { "DIFFERS" }
            );
            assert!(digest_ok && n == 0, "tvbig.{i} {mode:?}");
            total += got.data.len();
        }
    }
    println!("torchvision: {total} output bytes, all equal");
}

#[test]
fn pil_resize_is_bit_exact() {
    let r = reference("preprocess");
    for i in 0.. {
        let name = format!("pil.{i}.case");
        if !r.has(&name) {
            break;
        }
        let (src, oh, ow) = case_source(&r, &name);
        let want = r.u8s(&format!("pil.{i}.out")).unwrap();
        let got = resize_pil_bicubic(&src, oh, ow, PilPassOrder::ShrinkHeightFirst).unwrap();
        let (n, max) = diff_u8(&got.data, &want);
        let legacy = resize_pil_bicubic(&src, oh, ow, PilPassOrder::HorizontalFirst).unwrap();
        let (nl, _) = diff_u8(&legacy.data, &want);
        println!("pil.{i}: {}x{} -> {oh}x{ow}: {n} of {} bytes differ (max {max}); horizontal-first order: {nl}", src.height, src.width, want.len());
        assert_eq!(n, 0, "pil.{i}");
    }
    let (src, oh, ow) = case_source(&r, "pilbig.0.case");
    let got = resize_pil_bicubic(&src, oh, ow, PilPassOrder::ShrinkHeightFirst).unwrap();
    let strip = r.u8s("pilbig.0.strip").unwrap();
    assert_eq!(diff_u8(&got.data[..strip.len()], &strip).0, 0);
    assert_eq!(sha256_hex(&got.data), r.metadata("pilbig.0.sha256").unwrap());
}

// ------------------------------------------------------------------------------ encoder inputs

fn compare_rows(got: &VitInput, r: &ReferenceFile, pv: &str, grid: &str) {
    let want = r.f32s(pv).unwrap();
    let g: Vec<usize> = r.i64s(grid).unwrap().iter().map(|&v| v as usize).collect();
    assert_eq!(got.grid_thw.to_vec(), g, "{grid}");
    assert_eq!(got.pixel_values.len(), want.len(), "{pv}");
    let (mut max_rel, mut unequal) = (0f64, 0);
    for (&a, &b) in got.pixel_values.iter().zip(&want) {
        max_rel = max_rel.max(((a - b) as f64).abs() / (b as f64).abs().max(1e-6));
        unequal += (a != b) as usize;
    }
    println!("{pv}: {} rows, grid {g:?}, {unequal} values differ, max rel err {max_rel:.2e}", got.rows());
    assert!(max_rel < 1e-6, "{pv}: max rel err {max_rel}");
}

#[test]
fn vit_rows_match_the_processor() {
    for dir in ["qwen2.5-vl", "spatial-mllm-v1.1", "spatial-mllm-v1.0"] {
        let r = reference(dir);
        let frames = u8_frames(&r, "video.frames_u8");
        let vit = qwen_video_input(&frames).unwrap();
        assert_eq!(vit.merged_tokens(), vit.rows() / 4);
        compare_rows(&vit, &r, "video.pixel_values_videos", "video.video_grid_thw");
    }
    // An odd count is padded with the last frame.
    let r = reference("qwen2.5-vl");
    let four = u8_frames(&r, "video.frames_u8");
    let three = four.select(&[0, 1, 2]).unwrap();
    let padded = four.select(&[0, 1, 2, 2]).unwrap();
    assert_eq!(qwen_video_input(&three).unwrap(), qwen_video_input(&padded).unwrap());
    // Sizes the processor would resize again are refused.
    let bad = RgbFrames::new(1, 61, 139, vec![0; 61 * 139 * 3]).unwrap();
    assert!(matches!(qwen_video_input(&bad), Err(PreprocessError::Size { .. })));
}

#[test]
fn image_path_matches_the_processor() {
    // The HF processor resizes the 61 × 139 image with Pillow's bicubic to 56 × 140.
    let r = reference("qwen2.5-vl");
    let image = u8_frames(&r, "image.image_u8");
    let p = prepare_image(&image, PilPassOrder::default()).unwrap();
    assert_eq!((p.image.height, p.image.width), (56, 140));
    compare_rows(&p.vit, &r, "image.pixel_values", "image.image_grid_thw");
    assert_eq!(qwen_image_input(&p.image).unwrap(), p.vit);
    assert_eq!((p.vggt.count, p.vggt.height, p.vggt.width), (1, 56, 140));
}

#[test]
fn video_pipeline_matches_upstream() {
    // 3 sampled frames of 61 × 139: padded to 4, the 4-frame budget (→ 224 × 504), torchvision's
    // resize, the processor's rows and VGGT's frames.
    let r = reference("preprocess");
    let (src, oh, ow) = case_source(&r, "pipeline.video.case");
    let p = prepare_video(&src, TorchFloat::Fma).unwrap();
    assert_eq!((p.frames.count, p.frames.height, p.frames.width), (4, oh, ow));
    let grid: Vec<usize> = r.i64s("pipeline.video.grid").unwrap().iter().map(|&v| v as usize).collect();
    assert_eq!(p.vit.grid_thw.to_vec(), grid);
    let rows = r.f32s("pipeline.video.rows").unwrap();
    assert_eq!(&p.vit.pixel_values[..rows.len()], &rows[..]);
    assert_eq!(sha256_hex(&f32_bytes(&p.vit.pixel_values)), r.metadata("pipeline.video.sha256").unwrap());
    assert_eq!(sha256_hex(&f32_bytes(&p.vggt.pixels)), r.metadata("pipeline.vggt.sha256").unwrap());
    assert_eq!(p.vggt, vggt_input(&p.frames));
    let frames = p.vggt.as_frames();
    assert_eq!((frames.count, frames.height, frames.width, frames.pixels.len()), (4, oh, ow, 4 * 3 * oh * ow));
}

#[test]
fn frame_list_matches_qwen_vl_utils() {
    // 3 frames of 61 × 139 given as a list: 0.0.11 resizes each with Pillow to 56 × 140 and pads
    // to 4; 0.0.14 sizes them to multiples of 56 (112 × 224), pads, then torchvision enlarges to
    // the video budget (224 × 448).
    let r = reference("preprocess");
    let (src, _, _) = case_source(&r, "framelist.case");
    for (sizing, prefix) in [(FrameListSizing::V0011, "framelist.v0011"), (FrameListSizing::V0014, "framelist.v0014")] {
        let p = prepare_frame_list(&src, sizing, PilPassOrder::default(), TorchFloat::Fma).unwrap();
        let size: Vec<usize> = r.i64s(&format!("{prefix}.size")).unwrap().iter().map(|&v| v as usize).collect();
        assert_eq!(vec![p.frames.count, 3, p.frames.height, p.frames.width], size, "{prefix}");
        let grid: Vec<usize> = r.i64s(&format!("{prefix}.grid")).unwrap().iter().map(|&v| v as usize).collect();
        assert_eq!(p.vit.grid_thw.to_vec(), grid, "{prefix}");
        assert_eq!(sha256_hex(&f32_bytes(&p.vit.pixel_values)), r.metadata(&format!("{prefix}.sha256")).unwrap(), "{prefix}");
        assert_eq!(sha256_hex(&f32_bytes(&p.vggt.pixels)), r.metadata(&format!("{prefix}.vggt.sha256")).unwrap(), "{prefix}");
        println!("{prefix}: {size:?}, grid {grid:?}: rows and VGGT frames equal upstream");
    }
}

#[test]
fn frame_buffers_are_checked() {
    assert!(matches!(RgbFrames::new(2, 4, 4, vec![0; 10]), Err(PreprocessError::Buffer { .. })));
    assert_eq!(RgbFrames::new(0, 4, 4, vec![]), Err(PreprocessError::NoFrames));
    let rgba: Vec<u8> = (0..2 * 2 * 4).map(|i| i as u8).collect();
    let f = RgbFrames::from_rgba(1, 2, 2, &rgba).unwrap();
    assert_eq!(f.data, vec![0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14]);
    assert_eq!(f.select(&[1]), Err(PreprocessError::FrameIndex { index: 1, count: 1 }));
    let two = f.select(&[0, 0]).unwrap();
    assert_eq!(qwen_image_input(&two), Err(PreprocessError::ImageCount { count: 2 }));
    assert!(resize_torchvision_bicubic(&f, 0, 2, TorchFloat::Fma).is_err());
}
