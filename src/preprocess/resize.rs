//! Antialiased bicubic resizes of `u8` RGB frames, bit-exact with the two the reference uses.
//!
//! Both are separable filters with Keys' cubic (a = −0.5) whose support widens by the scale when
//! shrinking (antialiasing), taps normalised per output pixel, bounds as in Pillow
//! (xmin = ⌊center − support + ½⌋, xmax = ⌊center + support + ½⌋, clamped to the image).
//!
//! * **Videos: torchvision** `transforms.functional.resize(uint8 TCHW, size, BICUBIC,
//!   antialias=True)` (qwen-vl-utils `fetch_video`). torchvision's tensor path casts the `u8`
//!   tensor to float32, runs ATen's `_upsample_bicubic2d_aa` in float32 (horizontal pass, then
//!   vertical, f32 intermediate), clamps to [0, 255], rounds half to even and casts back. The
//!   weights are computed in float32 too. x86-64 builds of PyTorch run the AVX2 / AVX-512 kernel,
//!   whose compiler contracts `a * b + c` into FMA (in the filter polynomial and the tap sums);
//!   the portable build does not. [`TorchFloat`] picks one; both were checked bit-exact against
//!   torch 2.6 (`ATEN_CPU_CAPABILITY` avx512 / avx2 vs default).
//! * **Images: Pillow** `Image.resize(size, BICUBIC)` (the HF image processor's resize, and
//!   qwen-vl-utils `fetch_image`): f64 weights rounded to 22-bit fixed point, integer sums,
//!   each pass rounded and clamped to `u8`. Recent Pillow (13.0) runs the vertical pass first
//!   when the height shrinks by more than twice as many pixels as the width ([`PilPassOrder`]).

use super::{PreprocessError, RgbFrames, Result};

/// Which float32 arithmetic PyTorch's CPU kernel was built with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TorchFloat {
    /// AVX2 / AVX-512 kernels (every current x86-64 machine): `a * b + c` fused.
    #[default]
    Fma,
    /// The portable build (`ATEN_CPU_CAPABILITY=default`): separate multiply and add.
    Plain,
}

/// The order of Pillow's two passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PilPassOrder {
    /// Pillow 13: vertical first when `in_h − out_h > 0` and `in_h − out_h > 2 · (in_w − out_w)`,
    /// else horizontal first.
    #[default]
    ShrinkHeightFirst,
    /// Older Pillow: always horizontal first.
    HorizontalFirst,
}

const A: f32 = -0.5;

/// Keys' cubic in float32 as ATen writes it (`cubic_convolution1/2`), optionally with FMA.
fn torch_cubic(x: f32, mode: TorchFloat) -> f32 {
    let x = x.abs();
    let fma = |a: f32, b: f32, c: f32| match mode {
        TorchFloat::Fma => a.mul_add(b, c),
        TorchFloat::Plain => a * b + c,
    };
    if x < 1.0 {
        // ((A + 2) * x - (A + 3)) * x * x + 1
        let t = fma(A + 2.0, x, -(A + 3.0));
        fma(t * x, x, 1.0)
    } else if x < 2.0 {
        // ((A * x - 5A) * x + 8A) * x - 4A
        let t = fma(A, x, -(5.0 * A));
        let t = fma(t, x, 8.0 * A);
        fma(t, x, -(4.0 * A))
    } else {
        0.0
    }
}

/// Pillow's `bicubic_filter` in f64.
fn pil_cubic(x: f64) -> f64 {
    let a = A as f64;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// Taps of one output pixel: the first input index and one weight per input pixel from there.
struct Taps<W> {
    start: Vec<usize>,
    weights: Vec<Vec<W>>,
}

/// ATen's float32 `_compute_index_ranges_weights` (antialias = true, interp_size = 4). Mixed
/// float / double expressions follow C++'s promotions exactly (`center = scale * (i + 0.5)` is a
/// double product stored as float, and so on).
fn torch_taps(input: usize, output: usize, mode: TorchFloat) -> Taps<f32> {
    let scale = input as f32 / output as f32;
    let support: f32 = if scale >= 1.0 { (2.0 * scale as f64) as f32 } else { 2.0 };
    let max_taps = (support as f64).ceil() as i64 * 2 + 1;
    let invscale: f32 = if scale >= 1.0 { (1.0 / scale as f64) as f32 } else { 1.0 };
    let mut taps = Taps { start: Vec::with_capacity(output), weights: Vec::with_capacity(output) };
    for i in 0..output {
        let center = (scale as f64 * (i as f64 + 0.5)) as f32;
        let xmin = (((center - support) as f64 + 0.5) as i64).max(0);
        let xsize = ((((center + support) as f64 + 0.5) as i64).min(input as i64) - xmin).clamp(0, max_taps);
        let mut w: Vec<f32> = (0..xsize)
            .map(|j| {
                let x = ((((j + xmin) as f32 - center) as f64 + 0.5) * invscale as f64) as f32;
                torch_cubic(x, mode)
            })
            .collect();
        let total = w.iter().fold(0f32, |s, &v| s + v);
        if total != 0.0 {
            w.iter_mut().for_each(|v| *v /= total);
        }
        taps.start.push(xmin as usize);
        taps.weights.push(w);
    }
    taps
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` (box = whole image): 22-bit weights.
const PIL_BITS: u32 = 22;

fn pil_taps(input: usize, output: usize) -> Taps<i32> {
    let scale = input as f64 / output as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let inv = 1.0 / filterscale;
    let mut taps = Taps { start: Vec::with_capacity(output), weights: Vec::with_capacity(output) };
    for xx in 0..output {
        let center = (xx as f64 + 0.5) * scale;
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(input as i64) - xmin;
        let mut k: Vec<f64> = (0..xmax.max(0)).map(|x| pil_cubic(((x + xmin) as f64 - center + 0.5) * inv)).collect();
        let ww = k.iter().fold(0f64, |s, &v| s + v);
        if ww != 0.0 {
            k.iter_mut().for_each(|v| *v /= ww);
        }
        let one = (1u32 << PIL_BITS) as f64;
        let k = k.iter().map(|&v| if v < 0.0 { (-0.5 + v * one) as i32 } else { (0.5 + v * one) as i32 }).collect();
        taps.start.push(xmin as usize);
        taps.weights.push(k);
    }
    taps
}

fn check_target(out_h: usize, out_w: usize) -> Result<()> {
    if out_h == 0 || out_w == 0 {
        return Err(PreprocessError::Size { height: out_h, width: out_w, why: "empty resize target".into() });
    }
    Ok(())
}

/// One float32 pass of ATen's separable kernel over [rows, cols, 3] planes: along columns when
/// `horizontal`, else along rows. Accumulation order as ATen: first tap a product, then
/// `acc = acc + x · w` (fused with [`TorchFloat::Fma`]).
fn torch_pass(src: &[f32], rows: usize, cols: usize, out_len: usize, horizontal: bool, mode: TorchFloat) -> Vec<f32> {
    let input = if horizontal { cols } else { rows };
    let taps = torch_taps(input, out_len, mode);
    let (out_rows, out_cols) = if horizontal { (rows, out_len) } else { (out_len, cols) };
    let mut dst = vec![0f32; out_rows * out_cols * 3];
    let at = |r: usize, c: usize, ch: usize| src[(r * cols + c) * 3 + ch];
    for r in 0..out_rows {
        for c in 0..out_cols {
            let o = if horizontal { c } else { r };
            let (start, w) = (taps.start[o], &taps.weights[o]);
            for ch in 0..3 {
                let x = |j: usize| if horizontal { at(r, start + j, ch) } else { at(start + j, c, ch) };
                let mut acc = if w.is_empty() { 0.0 } else { x(0) * w[0] };
                for (j, &wj) in w.iter().enumerate().skip(1) {
                    acc = match mode {
                        TorchFloat::Fma => x(j).mul_add(wj, acc),
                        TorchFloat::Plain => acc + x(j) * wj,
                    };
                }
                dst[(r * out_cols + c) * 3 + ch] = acc;
            }
        }
    }
    dst
}

/// torchvision `resize(frames, [out_h, out_w], BICUBIC, antialias=True)` on `u8` frames, as
/// qwen-vl-utils calls it (bit-exact, see the module docs).
pub fn resize_torchvision_bicubic(frames: &RgbFrames, out_h: usize, out_w: usize, mode: TorchFloat) -> Result<RgbFrames> {
    check_target(out_h, out_w)?;
    let (h, w) = (frames.height, frames.width);
    let mut data = Vec::with_capacity(frames.count * out_h * out_w * 3);
    for f in 0..frames.count {
        let mut x: Vec<f32> = frames.frame(f).iter().map(|&v| v as f32).collect();
        if out_w != w {
            x = torch_pass(&x, h, w, out_w, true, mode);
        }
        if out_h != h {
            x = torch_pass(&x, h, out_w, out_h, false, mode);
        }
        data.extend(x.iter().map(|&v| v.clamp(0.0, 255.0).round_ties_even() as u8));
    }
    RgbFrames::new(frames.count, out_h, out_w, data)
}

/// One Pillow 8-bit pass: sums start at ½ in fixed point, `>> 22`, clamped to [0, 255].
fn pil_pass(src: &[u8], rows: usize, cols: usize, out_len: usize, horizontal: bool) -> Vec<u8> {
    let input = if horizontal { cols } else { rows };
    let taps = pil_taps(input, out_len);
    let (out_rows, out_cols) = if horizontal { (rows, out_len) } else { (out_len, cols) };
    let mut dst = vec![0u8; out_rows * out_cols * 3];
    for r in 0..out_rows {
        for c in 0..out_cols {
            let o = if horizontal { c } else { r };
            let (start, k) = (taps.start[o], &taps.weights[o]);
            for ch in 0..3 {
                let mut ss: i64 = 1 << (PIL_BITS - 1);
                for (j, &kj) in k.iter().enumerate() {
                    let (sr, sc) = if horizontal { (r, start + j) } else { (start + j, c) };
                    ss += src[(sr * cols + sc) * 3 + ch] as i64 * kj as i64;
                }
                dst[(r * out_cols + c) * 3 + ch] = (ss >> PIL_BITS).clamp(0, 255) as u8;
            }
        }
    }
    dst
}

/// Pillow `Image.resize((out_w, out_h), Image.BICUBIC)` on RGB frames (bit-exact with Pillow's
/// x86-64 wheels; see the module docs for the pass order).
pub fn resize_pil_bicubic(frames: &RgbFrames, out_h: usize, out_w: usize, order: PilPassOrder) -> Result<RgbFrames> {
    check_target(out_h, out_w)?;
    let (h, w) = (frames.height, frames.width);
    let (dh, dw) = (h as i64 - out_h as i64, w as i64 - out_w as i64);
    let vertical_first = order == PilPassOrder::ShrinkHeightFirst && dh > 0 && dh > 2 * dw;
    let mut data = Vec::with_capacity(frames.count * out_h * out_w * 3);
    for f in 0..frames.count {
        let mut x = frames.frame(f).to_vec();
        let (mut rows, mut cols) = (h, w);
        for vertical in if vertical_first { [true, false] } else { [false, true] } {
            if vertical && out_h != rows {
                x = pil_pass(&x, rows, cols, out_h, false);
                rows = out_h;
            } else if !vertical && out_w != cols {
                x = pil_pass(&x, rows, cols, out_w, true);
                cols = out_w;
            }
        }
        data.extend_from_slice(&x);
    }
    RgbFrames::new(frames.count, out_h, out_w, data)
}
