//! The kernel cases. Each draws fresh random inputs (sizes chosen to be multiples of no tile),
//! runs the kernel on poisoned outputs and compares with `reference`.

use std::future::Future;
use std::pin::Pin;

use super::reference as cpu;
use super::util::{as_stored, compare, tol, CaseOutcome, CaseResult, Rng};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::attention::{attention_with, Attention, HeadsView, Kernel};
use crate::kernels::elementwise::{elementwise, modulate, relu_columns, Op};
use crate::kernels::matmul::{linear_with, Activation, Epilogue, Path};
use crate::kernels::norm::{self, Rows};
use crate::kernels::rope::{inv_freq, rope_inplace, RopeKind, RopeTable};
use crate::kernels::sample::{argmax, repetition_penalty, sample, Sampling};
use crate::kernels::conv::{conv2d, conv_transpose2d, ConvEpilogue, ImageView, SeparablePos};
use crate::kernels::embed::{embed, embed_parts};
use crate::kernels::gather::{gather_rows, gather_rows_into, place_cols};
use crate::kernels::regroup::{regroup, RegroupOrder};
use crate::kernels::head_act::{head_activation, ConfAct, ValueAct};
use crate::kernels::resize::bilinear;
use crate::weights::{PackedWeight, Weight, WeightFormat};

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

pub struct Case {
    pub name: &'static str,
    pub run: for<'a> fn(&'a Gpu, &'a mut Rng) -> BoxFut<'a, CaseOutcome>,
}

/// Run one case with a seed derived from `seed` and the case name.
pub async fn run_case(gpu: &Gpu, case: &Case, seed: u64) -> CaseResult {
    let h = case.name.bytes().fold(seed ^ 0x9E37_79B9_7F4A_7C15, |a, b| a.rotate_left(7) ^ b as u64);
    let mut rng = Rng::new(h);
    let out = (case.run)(gpu, &mut rng).await;
    match out {
        Ok(detail) => CaseResult { ok: true, detail },
        Err(detail) => CaseResult { ok: false, detail: format!("{detail} (seed {seed})") },
    }
}

macro_rules! case {
    ($name:literal, $f:path) => {
        Case { name: $name, run: |g, r| Box::pin($f(g, r)) }
    };
}

pub fn all_cases() -> Vec<Case> {
    vec![
        case!("matmul_f16", matmul_f16),
        case!("matmul_q8", matmul_q8),
        case!("matmul_q4", matmul_q4),
        case!("attention_causal_gqa_d128", attention_causal_gqa),
        case!("attention_full_d64", attention_full),
        case!("attention_varlen_d80", attention_varlen),
        case!("rms_norm", rms_norm),
        case!("layer_norm", layer_norm),
        case!("qk_norm_inplace", qk_norm_inplace),
        case!("rope_variants", rope_variants),
        case!("elementwise", elementwise_ops),
        case!("modulate", modulate_case),
        case!("embed", embed_formats),
        case!("argmax", argmax_case),
        case!("sample_top_k_top_p", sample_case),
        case!("repetition_penalty", penalty_case),
        case!("gather_rows_place_cols", gather_place_case),
        case!("regroup_connector", regroup_case),
        case!("weight_slice_rows", slice_rows_case),
        case!("conv2d", conv2d_case),
        case!("conv_transpose2d", conv_transpose_case),
        case!("bilinear", bilinear_case),
        case!("head_activation", head_act_case),
    ]
}

fn e2s(e: crate::gpu::GpuError) -> String {
    e.to_string()
}

/// Record with `f`, submit, read the returned tensor back.
async fn run(gpu: &Gpu, f: impl FnOnce(&mut Recorder) -> crate::gpu::Result<Tensor>) -> Result<Vec<f32>, String> {
    let mut rec = Recorder::new(gpu);
    let t = f(&mut rec).map_err(e2s)?;
    rec.submit().map_err(e2s)?;
    gpu.read_f32(&t).await.map_err(e2s)
}

fn summary(notes: Vec<String>) -> CaseOutcome {
    Ok(notes.join("; "))
}

// ---------------------------------------------------------------- matmul

async fn matmul_f16(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    matmul_case(g, r, WeightFormat::F16).await
}
async fn matmul_q8(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    matmul_case(g, r, WeightFormat::Q8).await
}
async fn matmul_q4(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    matmul_case(g, r, WeightFormat::Q4).await
}

async fn matmul_case(g: &Gpu, r: &mut Rng, fmt: WeightFormat) -> CaseOutcome {
    let sizes = [
        (37, 75, 83, Path::Gemm),
        (130, 129, 300, Path::Gemm),
        (67, 19, 1176, Path::Gemm),
        (1, 300, 517, Path::Gemv),
        (3, 71, 45, Path::Gemv),
        (1, 77, 1060, Path::Gemv),
        (2, 1031, 2048, Path::Auto),
    ];
    let mut notes = Vec::new();
    for (si, &(m, n, k, path)) in sizes.iter().enumerate() {
        for epi in [si % 4, (si + 2) % 4] {
            let x = as_stored(g, &r.normals(m * k, 1.0));
            let w = r.normals(n * k, 0.05);
            let packed = PackedWeight::pack(fmt, &w, n, k);
            let wd = packed.unpack();
            let bias = r.normals(n, 0.1);
            let aux = as_stored(g, &r.normals(m * n, 1.0));
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
            let xt = g.upload_act(&x, &[m, k]).map_err(e2s)?;
            let wt = Weight::upload(g, &packed, "w").map_err(e2s)?;
            let bt = g.upload_f32(&bias, &[n]).map_err(e2s)?;
            let at = g.upload_act(&aux, &[m, n]).map_err(e2s)?;
            let got = run(g, |rec| {
                let e = match epi {
                    0 => Epilogue::none(),
                    1 => Epilogue::bias(Some(&bt)).with_act(Activation::Gelu),
                    2 => Epilogue::bias(Some(&bt)).with_act(Activation::Silu).with_mul(&at),
                    _ => Epilogue::none().with_add(&at),
                };
                linear_with(rec, &xt, &wt, e, path)
            })
            .await?;
            notes.push(compare(&format!("{m}x{n}x{k} {path:?} epi{epi}"), &got, &want, tol(g, 1e-4))?);
        }
    }
    summary(notes)
}

// ---------------------------------------------------------------- attention

/// Pack per-token [q heads | k heads | v heads] into one fused row of `stride` (>= the sum) at
/// offset `lead`, as a fused QKV projection lays them out.
#[allow(clippy::too_many_arguments)]
async fn attention_check(
    g: &Gpu,
    r: &mut Rng,
    label: &str,
    n_q: usize,
    n_kv: usize,
    hq: usize,
    hkv: usize,
    d: usize,
    causal: bool,
    q_pos0: usize,
    segments: Option<&[u32]>,
    kernel: Kernel,
) -> CaseOutcome {
    let q = as_stored(g, &r.normals(n_q * hq * d, 1.0));
    let k = as_stored(g, &r.normals(n_kv * hkv * d, 1.0));
    let v = as_stored(g, &r.normals(n_kv * hkv * d, 1.0));
    let scale = 1.0 / (d as f64).sqrt();
    let seg_of = |i: usize| segments.map(|s| s.iter().rposition(|&b| b as usize <= i).unwrap()).unwrap_or(0);
    let want = cpu::attention(&q, &k, &v, n_q, n_kv, hq, hkv, d, scale, |i, j| (!causal || j <= q_pos0 + i) && seg_of(i) == seg_of(j));
    // K and V share one fused buffer [n_kv, lead + (hkv + hkv) * d + pad] to exercise strides.
    let lead = 3;
    let kv_stride = lead + 2 * hkv * d + 5;
    let mut kv = vec![0f32; n_kv * kv_stride];
    for t in 0..n_kv {
        for e in 0..hkv * d {
            kv[t * kv_stride + lead + e] = k[t * hkv * d + e];
            kv[t * kv_stride + lead + hkv * d + e] = v[t * hkv * d + e];
        }
    }
    let qt = g.upload_act(&q, &[n_q, hq * d]).map_err(e2s)?;
    let kvt = g.upload_act(&kv, &[n_kv, kv_stride]).map_err(e2s)?;
    let segt = match segments {
        Some(s) => Some(g.upload_u32(s, &[s.len()]).map_err(e2s)?),
        None => None,
    };
    let got = run(g, |rec| {
        let a = Attention {
            q: HeadsView::dense(&qt, hq),
            k: HeadsView { t: &kvt, tokens: n_kv, heads: hkv, stride: kv_stride, off: lead },
            v: HeadsView { t: &kvt, tokens: n_kv, heads: hkv, stride: kv_stride, off: lead + hkv * d },
            head_dim: d,
            causal,
            q_pos0,
            segments: segt.as_ref(),
            scale: scale as f32,
        };
        attention_with(rec, &a, kernel)
    })
    .await?;
    compare(label, &got, &want, tol(g, 2e-4))
}

async fn attention_causal_gqa(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let mut notes = Vec::new();
    // Prefill, prefill continuing a cache, decode steps; Qwen2.5's 16 query / 2 kv heads of 128.
    for &(n_q, n_kv, q0, kern) in &[
        (37, 37, 0, Kernel::Tile),
        (70, 70, 0, Kernel::Tile),
        (8, 45, 37, Kernel::Tile),
        (1, 300, 299, Kernel::Rows),
        (3, 130, 127, Kernel::Auto),
        (37, 37, 0, Kernel::Rows),
        // Decode over a long cache: keys cut into ranges and merged (20 ranges; 2 queries).
        (1, 5003, 5002, Kernel::Rows),
        (2, 2999, 2997, Kernel::Auto),
    ] {
        let label = format!("causal q{n_q} kv{n_kv} pos0 {q0} {kern:?}");
        notes.push(attention_check(g, r, &label, n_q, n_kv, 16, 2, 128, true, q0, None, kern).await?);
    }
    summary(notes)
}

async fn attention_full(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let mut notes = Vec::new();
    for &(n, hq, kern) in &[(300, 3, Kernel::Tile), (9, 1, Kernel::Tile), (1029, 1, Kernel::Tile), (64, 2, Kernel::Tile), (2, 3, Kernel::Auto)] {
        // 64 queries over 30 011 keys: the length of VGGT's global attention, in bounded memory.
        let n_kv = match n {
            2 => 301,
            9 => 480,
            64 => 30_011,
            _ => n,
        };
        let label = format!("full q{n} kv{n_kv} {kern:?}");
        notes.push(attention_check(g, r, &label, n, n_kv, hq, hq, 64, false, 0, None, kern).await?);
    }
    summary(notes)
}

async fn attention_varlen(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    // ViT-style windows of 64, 48, 16, 12 tokens and two more, head dim 80.
    let seg = [0u32, 64, 112, 128, 140, 203, 267];
    let mut notes = Vec::new();
    for kern in [Kernel::Tile, Kernel::Rows] {
        let label = format!("varlen {kern:?}");
        notes.push(attention_check(g, r, &label, 267, 267, 2, 2, 80, false, 0, Some(&seg), kern).await?);
    }
    summary(notes)
}

// ---------------------------------------------------------------- norms

async fn rms_norm(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let mut notes = Vec::new();
    for &(rows, dim) in &[(7, 2051), (3, 16384), (33, 80)] {
        let x = as_stored(g, &r.normals(rows * dim, 2.0));
        let w = r.normals(dim, 1.0);
        let want = cpu::rms_norm(&x, &w, dim, 1e-6);
        let xt = g.upload_act(&x, &[rows, dim]).map_err(e2s)?;
        let wt = g.upload_f32(&w, &[dim]).map_err(e2s)?;
        let got = run(g, |rec| norm::rms_norm(rec, &xt, &wt, 1e-6)).await?;
        notes.push(compare(&format!("rms {rows}x{dim}"), &got, &want, tol(g, 1e-5))?);
    }
    summary(notes)
}

async fn layer_norm(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let mut notes = Vec::new();
    for &(rows, dim, affine) in &[(5, 1023, true), (4, 2048, false), (9, 1024, true)] {
        let x: Vec<f32> = r.normals(rows * dim, 1.5).iter().map(|v| v + 0.7).collect();
        let x = as_stored(g, &x);
        let w = r.normals(dim, 1.0);
        let b = r.normals(dim, 0.5);
        let (wo, bo) = if affine { (Some(&w[..]), Some(&b[..])) } else { (None, None) };
        let want = cpu::layer_norm(&x, wo, bo, dim, 1e-5);
        let xt = g.upload_act(&x, &[rows, dim]).map_err(e2s)?;
        let wt = g.upload_f32(&w, &[dim]).map_err(e2s)?;
        let bt = g.upload_f32(&b, &[dim]).map_err(e2s)?;
        let got = run(g, |rec| if affine { norm::layer_norm(rec, &xt, Some(&wt), Some(&bt), 1e-5) } else { norm::layer_norm(rec, &xt, None, None, 1e-5) }).await?;
        notes.push(compare(&format!("layer {rows}x{dim} affine={affine}"), &got, &want, tol(g, 1e-5))?);
    }
    summary(notes)
}

async fn qk_norm_inplace(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    // VGGT's per-head LayerNorm over 64 dims, on the K part of a fused [q | k | v] row.
    let (tokens, heads, dim) = (9, 3, 64);
    let stride = 3 * heads * dim;
    let off = heads * dim;
    let x = as_stored(g, &r.normals(tokens * stride, 1.0));
    let w = r.normals(dim, 1.0);
    let b = r.normals(dim, 0.3);
    let mut want: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    for t in 0..tokens {
        for h in 0..heads {
            let s = t * stride + off + h * dim;
            let y = cpu::layer_norm(&x[s..s + dim], Some(&w), Some(&b), dim, 1e-5);
            want[s..s + dim].copy_from_slice(&y);
        }
    }
    let xt = g.upload_act(&x, &[tokens, stride]).map_err(e2s)?;
    let wt = g.upload_f32(&w, &[dim]).map_err(e2s)?;
    let bt = g.upload_f32(&b, &[dim]).map_err(e2s)?;
    let got = run(g, |rec| {
        norm::head_layer_norm_inplace(rec, &xt, Rows { dim, heads, token_stride: stride, off }, &wt, &bt, 1e-5)?;
        Ok(xt.clone())
    })
    .await?;
    compare("qk norm in place", &got, &want, tol(g, 1e-5))
}

// ---------------------------------------------------------------- rope

/// Per-channel angles of one token for each variant, following the references' definitions.
fn rope_angles(kind: RopeKind, d: usize, pos: &[i32]) -> Vec<Vec<f64>> {
    // PyTorch computes inv_freq and position * inv_freq in f32.
    let ang = |p: i32, f: f32| (p as f32 * f) as f64;
    match kind {
        RopeKind::OneD { theta } => {
            let f = inv_freq(theta, d);
            vec![(0..d).map(|c| ang(pos[0], f[c % (d / 2)])).collect()]
        }
        RopeKind::MRope { theta, sections } => {
            let f = inv_freq(theta, d);
            let comp = |j: usize| {
                if j < sections[0] {
                    0
                } else if j < sections[0] + sections[1] {
                    1
                } else {
                    2
                }
            };
            vec![(0..d).map(|c| ang(pos[comp(c % (d / 2))], f[c % (d / 2)])).collect()]
        }
        RopeKind::QwenVision { theta } => {
            let f = inv_freq(theta, d / 2);
            let q = f.len();
            vec![(0..d)
                .map(|c| {
                    let j = c % (2 * q);
                    if j < q {
                        ang(pos[0], f[j])
                    } else {
                        ang(pos[1], f[j - q])
                    }
                })
                .collect()]
        }
        RopeKind::Vggt { theta } => {
            let f = inv_freq(theta, d / 2);
            (0..2).map(|part| (0..d / 2).map(|c| ang(pos[part], f[c % (d / 4)])).collect()).collect()
        }
    }
}

async fn rope_variants(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let variants = [
        (RopeKind::OneD { theta: 1_000_000.0 }, 128, 3, 11, 1, 100_000),
        (RopeKind::MRope { theta: 1_000_000.0, sections: [16, 24, 24] }, 128, 2, 9, 3, 5_000),
        (RopeKind::QwenVision { theta: 10_000.0 }, 80, 2, 13, 2, 60),
        (RopeKind::Vggt { theta: 100.0 }, 64, 2, 7, 2, 40),
    ];
    let mut notes = Vec::new();
    for (kind, d, heads, tokens, ncomp, maxpos) in variants {
        let lead = 5;
        let stride = lead + heads * d + 3;
        let x = as_stored(g, &r.normals(tokens * stride, 1.0));
        let pos: Vec<i32> = (0..tokens * ncomp).map(|_| r.below(maxpos) as i32).collect();
        let mut want: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for t in 0..tokens {
            let parts = rope_angles(kind, d, &pos[t * ncomp..(t + 1) * ncomp]);
            let pd = d / parts.len();
            for h in 0..heads {
                for (pi, angle) in parts.iter().enumerate() {
                    let s = t * stride + lead + h * d + pi * pd;
                    want[s..s + pd].copy_from_slice(&cpu::rope_head(&x[s..s + pd], angle));
                }
            }
        }
        let table = RopeTable::new(g, kind, d).map_err(e2s)?;
        let xt = g.upload_act(&x, &[tokens, stride]).map_err(e2s)?;
        let pt = g.upload_i32(&pos, &[tokens, ncomp]).map_err(e2s)?;
        let got = run(g, |rec| {
            rope_inplace(rec, &xt, heads, stride, lead, &pt, &table)?;
            Ok(xt.clone())
        })
        .await?;
        notes.push(compare(&format!("{kind:?}"), &got, &want, tol(g, 2e-5))?);
    }
    summary(notes)
}

// ---------------------------------------------------------------- element-wise, embedding

async fn elementwise_ops(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let (rows, cols) = (13, 77);
    let n = rows * cols;
    let mut notes = Vec::new();
    for op in [Op::Add, Op::Mul, Op::Silu, Op::Gelu, Op::SiluMul, Op::Scale, Op::ScaleAdd, Op::Relu] {
        let a = as_stored(g, &r.normals(n, 2.0));
        let b = as_stored(g, &r.normals(n, 2.0));
        let gm = r.normals(cols, 0.1);
        let want: Vec<f64> = (0..n)
            .map(|i| {
                let (x, y, s) = (a[i] as f64, b[i] as f64, gm[i % cols] as f64);
                match op {
                    Op::Add => x + y,
                    Op::Mul => x * y,
                    Op::Silu => cpu::silu(x),
                    Op::Gelu => cpu::gelu(x),
                    Op::SiluMul => cpu::silu(x) * y,
                    Op::Scale => x * s,
                    Op::ScaleAdd => x + y * s,
                    Op::Relu => x.max(0.0),
                }
            })
            .collect();
        let at = g.upload_act(&a, &[rows, cols]).map_err(e2s)?;
        let bt = g.upload_act(&b, &[rows, cols]).map_err(e2s)?;
        let gt = g.upload_f32(&gm, &[cols]).map_err(e2s)?;
        let needs_b = matches!(op, Op::Add | Op::Mul | Op::SiluMul | Op::ScaleAdd);
        let needs_g = matches!(op, Op::Scale | Op::ScaleAdd);
        let got = run(g, |rec| elementwise(rec, op, &at, needs_b.then_some(&bt), needs_g.then_some(&gt))).await?;
        notes.push(compare(&format!("{op:?}"), &got, &want, tol(g, 1e-5))?);
    }
    // ReLU on a column range only (VGGT's pose activation), including an empty range.
    for (lo, hi) in [(7, 9), (0, 1), (76, 77), (30, 30)] {
        let a = as_stored(g, &r.normals(n, 2.0));
        let want: Vec<f64> = (0..n).map(|i| if (lo..hi).contains(&(i % cols)) { (a[i] as f64).max(0.0) } else { a[i] as f64 }).collect();
        let at = g.upload_act(&a, &[rows, cols]).map_err(e2s)?;
        let got = run(g, |rec| relu_columns(rec, &at, lo..hi)).await?;
        notes.push(compare(&format!("ReLU columns {lo}..{hi}"), &got, &want, tol(g, 1e-6))?);
    }
    summary(notes)
}

async fn modulate_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let mut notes = Vec::new();
    for &(rows, cols) in &[(3, 64), (13, 77), (1, 2051), (6, 2048)] {
        let n = rows * cols;
        let x = as_stored(g, &r.normals(n, 1.0));
        let m = as_stored(g, &r.normals(3 * n, 0.7));
        let res = as_stored(g, &r.normals(n, 1.5));
        let want = cpu::modulate(&x, &m, &res, cols);
        let xt = g.upload_act(&x, &[rows, cols]).map_err(e2s)?;
        let mt = g.upload_act(&m, &[rows, 3 * cols]).map_err(e2s)?;
        let rt = g.upload_act(&res, &[rows, cols]).map_err(e2s)?;
        let got = run(g, |rec| modulate(rec, &xt, &mt, &rt)).await?;
        notes.push(compare(&format!("modulate {rows}x{cols}"), &got, &want, tol(g, 1e-5))?);
    }
    summary(notes)
}

async fn embed_formats(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let (vocab, dim, n) = (1001, 301, 19);
    let mut notes = Vec::new();
    for fmt in WeightFormat::all() {
        let table = r.normals(vocab * dim, 0.5);
        let packed = PackedWeight::pack(fmt, &table, vocab, dim);
        let td = packed.unpack();
        let ids: Vec<u32> = (0..n).map(|_| r.below(vocab) as u32).collect();
        let want: Vec<f64> = ids.iter().flat_map(|&i| td[i as usize * dim..(i as usize + 1) * dim].iter().map(|&v| v as f64)).collect();
        let wt = Weight::upload(g, &packed, "table").map_err(e2s)?;
        let it = g.upload_u32(&ids, &[n]).map_err(e2s)?;
        let got = run(g, |rec| embed(rec, &it, &wt)).await?;
        notes.push(compare(&format!("embed {}", fmt.name()), &got, &want, tol(g, 1e-6))?);
        // The same table split by rows into three parts, as large tables are stored.
        let cuts = [0, 1 + r.below(vocab / 2), vocab / 2 + r.below(vocab / 2), vocab];
        let parts: Vec<Weight> = cuts
            .windows(2)
            .map(|c| Weight::upload(g, &PackedWeight::pack(fmt, &table[c[0] * dim..c[1] * dim], c[1] - c[0], dim), "part"))
            .collect::<Result<_, _>>()
            .map_err(e2s)?;
        let got = run(g, |rec| embed_parts(rec, &it, &parts)).await?;
        notes.push(compare(&format!("embed {} in 3 parts", fmt.name()), &got, &want, tol(g, 1e-6))?);
    }
    summary(notes)
}

// ---------------------------------------------------------------- token selection

async fn read_token(g: &Gpu, f: impl FnOnce(&mut Recorder) -> crate::gpu::Result<Tensor>) -> Result<usize, String> {
    let mut rec = Recorder::new(g);
    let t = f(&mut rec).map_err(e2s)?;
    rec.submit().map_err(e2s)?;
    Ok(g.read_u32(&t).await.map_err(e2s)?[0] as usize)
}

async fn argmax_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let mut notes = Vec::new();
    for &(rows, n, row) in &[(1, 151_937, 0), (3, 1000, 2)] {
        let mut l = as_stored(g, &r.normals(rows * n, 3.0));
        // A tie: the same maximum twice; the first index must win.
        let (a, b) = (r.below(n), r.below(n));
        l[row * n + a] = 50.0;
        l[row * n + b] = 50.0;
        let want = a.min(b);
        let lt = g.upload_act(&l, &[rows, n]).map_err(e2s)?;
        let got = read_token(g, |rec| argmax(rec, &lt, row)).await?;
        if got != want {
            return Err(format!("argmax of {n}: got {got}, want {want}"));
        }
        notes.push(format!("argmax {n} ok"));
    }
    summary(notes)
}

async fn sample_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let n = 5003;
    let mut notes = Vec::new();
    for &(t, top_k, top_p) in &[(0.7f32, 0u32, 0.9f32), (1.0, 50, 1.0), (0.5, 100, 0.8), (1.0, 0, 0.001), (1.3, 7, 0.95)] {
        let l = as_stored(g, &r.normals(n, 3.0));
        let lt = g.upload_act(&l, &[n]).map_err(e2s)?;
        for _ in 0..4 {
            let u = r.unit() as f32;
            let s = Sampling { temperature: t, top_p, top_k, u };
            let got = read_token(g, |rec| sample(rec, &lt, 0, s)).await?;
            let (want, kept) = cpu::sample(&l, t as f64, top_k as usize, top_p as f64, u as f64);
            if got != want {
                // Accept only a draw that a hair's change of u or top_p would also give.
                let near = [(-1e-4, 0.0), (1e-4, 0.0), (0.0, -1e-4), (0.0, 1e-4)]
                    .iter()
                    .any(|&(du, dp)| cpu::sample(&l, t as f64, top_k as usize, (top_p as f64 + dp).min(1.0), (u as f64 + du).clamp(0.0, 1.0)).0 == got);
                if !near {
                    return Err(format!("T={t} top_k={top_k} top_p={top_p} u={u}: got token {got}, want {want} (kept {kept})"));
                }
            }
        }
        notes.push(format!("T={t} k={top_k} p={top_p} ok"));
    }
    // A tie at the top with a tiny top_p: both tied tokens stay, and u picks between them.
    let mut l = as_stored(g, &r.normals(n, 3.0));
    let (a, b) = (r.below(n / 2), n / 2 + r.below(n / 2));
    l[a] = 40.0;
    l[b] = 40.0;
    let lt = g.upload_act(&l, &[n]).map_err(e2s)?;
    for (u, want) in [(0.25f32, a), (0.75, b)] {
        let s = Sampling { temperature: 1.0, top_p: 0.001, top_k: 1, u };
        let got = read_token(g, |rec| sample(rec, &lt, 0, s)).await?;
        if got != want {
            return Err(format!("tie at the top, u={u}: got token {got}, want {want} of tied {a} and {b}"));
        }
    }
    notes.push("tie kept".into());
    summary(notes)
}

async fn penalty_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let (rows, n, row) = (3, 1531, 1);
    let l = as_stored(g, &r.normals(rows * n, 3.0));
    let mut ids: Vec<u32> = (0..300).map(|_| r.below(n) as u32).collect();
    ids.sort_unstable();
    ids.dedup();
    let p = 1.05 + r.unit() as f32;
    let mut want: Vec<f64> = l.iter().map(|&v| v as f64).collect();
    for &i in &ids {
        let v = &mut want[row * n + i as usize];
        *v = if *v < 0.0 { *v * p as f64 } else { *v / p as f64 };
    }
    let lt = g.upload_act(&l, &[rows, n]).map_err(e2s)?;
    let it = g.upload_u32(&ids, &[ids.len()]).map_err(e2s)?;
    let got = run(g, |rec| {
        repetition_penalty(rec, &lt, row, &it, p)?;
        Ok(lt.clone())
    })
    .await?;
    summary(vec![compare("repetition penalty", &got, &want, tol(g, 1e-6))?])
}

async fn gather_place_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let (n, d1, d2) = (157, 37, 29);
    let a = as_stored(g, &r.normals(n * d1, 1.0));
    let b = as_stored(g, &r.normals(n * d2, 1.0));
    let idx: Vec<u32> = (0..n + 5).map(|_| r.below(n) as u32).collect();
    let row = |i: usize| a[i * d1..(i + 1) * d1].iter().chain(&b[i * d2..(i + 1) * d2]).map(|&v| v as f64).collect::<Vec<_>>();
    let want_g: Vec<f64> = idx.iter().flat_map(|&i| a[i as usize * d1..(i as usize + 1) * d1].iter().map(|&v| v as f64)).collect();
    let want_gi: Vec<f64> = idx.iter().flat_map(|&i| row(i as usize)).collect();
    let want_c: Vec<f64> = (0..n).flat_map(row).collect();
    let (r0, rows) = (41, 60);
    let want_cr: Vec<f64> = (r0..r0 + rows).flat_map(row).collect();
    let at = g.upload_act(&a, &[n, d1]).map_err(e2s)?;
    let bt = g.upload_act(&b, &[n, d2]).map_err(e2s)?;
    let it = g.upload_u32(&idx, &[idx.len()]).map_err(e2s)?;
    let got_g = run(g, |rec| gather_rows(rec, &at, &it)).await?;
    let got_gi = run(g, |rec| {
        let y = rec.gpu.alloc_act(&[idx.len(), d1 + d2])?;
        gather_rows_into(rec, &at, &it, &y, 0)?;
        gather_rows_into(rec, &bt, &it, &y, d1)?;
        Ok(y)
    })
    .await?;
    let concat = |r0: usize, rows: usize| {
        let (at, bt) = (&at, &bt);
        move |rec: &mut crate::gpu::Recorder| {
            let y = rec.gpu.alloc_act(&[rows, d1 + d2])?;
            place_cols(rec, at, r0, &y, 0)?;
            place_cols(rec, bt, r0, &y, d1)?;
            Ok(y)
        }
    };
    let got_c = run(g, concat(0, n)).await?;
    let got_cr = run(g, concat(r0, rows)).await?;
    summary(vec![
        compare("gather rows", &got_g, &want_g, 0.0)?,
        compare("gather rows into columns", &got_gi, &want_gi, 0.0)?,
        compare("concat columns", &got_c, &want_c, 0.0)?,
        compare(&format!("concat columns of rows {r0}..{}", r0 + rows), &got_cr, &want_cr, 0.0)?,
    ])
}

/// The connectors' regrouping, both orders, against index arithmetic written from the upstream
/// permutes: v1.0 permute(0,1,3,5,2,4,6,7) of (B,T',2,h',2,w',2,C); v1.1 (sh, sw, d, tf). The
/// channels come in two halves (VGGT's frame and global outputs); all rows, and a range of them.
async fn regroup_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let (frames, ps, gh, gw, c) = (4, 5, 6, 10, 26);
    let (p, half) = (ps + gh * gw, c / 2);
    let a = as_stored(g, &r.normals(frames * p * half, 1.0));
    let b = as_stored(g, &r.normals(frames * p * half, 1.0));
    let x = |tok: usize, d: usize| if d < half { a[tok * half + d] } else { b[tok * half + d - half] } as f64;
    let at = g.upload_act(&a, &[frames * p, half]).map_err(e2s)?;
    let bt = g.upload_act(&b, &[frames * p, half]).map_err(e2s)?;
    let mut notes = Vec::new();
    for order in [RegroupOrder::V10, RegroupOrder::V11] {
        let mut want = Vec::new();
        for t in 0..frames / 2 {
            for i in 0..gh / 2 {
                for j in 0..gw / 2 {
                    let at = |tf: usize, sh: usize, sw: usize, d: usize| x((2 * t + tf) * p + ps + (2 * i + sh) * gw + 2 * j + sw, d);
                    match order {
                        RegroupOrder::V10 => (0..2).for_each(|tf| (0..2).for_each(|sh| (0..2).for_each(|sw| (0..c).for_each(|d| want.push(at(tf, sh, sw, d)))))),
                        RegroupOrder::V11 => (0..2).for_each(|sh| (0..2).for_each(|sw| (0..c).for_each(|d| (0..2).for_each(|tf| want.push(at(tf, sh, sw, d)))))),
                    }
                }
            }
        }
        let n = frames / 2 * (gh / 2) * (gw / 2);
        let got = run(g, |rec| regroup(rec, [&at, &bt], frames, ps, (gh, gw), order, 0..n)).await?;
        notes.push(compare(&format!("regroup {order:?}"), &got, &want, 0.0)?);
        let rows = 7..n - 3;
        let got = run(g, |rec| regroup(rec, [&at, &bt], frames, ps, (gh, gw), order, rows.clone())).await?;
        notes.push(compare(&format!("regroup {order:?} rows {rows:?}"), &got, &want[rows.start * 8 * c..rows.end * 8 * c], 0.0)?);
    }
    summary(notes)
}

// ---------------------------------------------------------------- DPT: convolutions, resize, head

/// A random separable positional table for an output of h x w x c, and its dense values.
fn random_pos(g: &Gpu, r: &mut Rng, h: usize, w: usize, c: usize) -> Result<(SeparablePos, Vec<f64>), String> {
    let hc = c / 2;
    let xp = r.normals(w * hc, 0.5);
    let yp = r.normals(h * hc, 0.5);
    let mut dense = vec![0f64; h * w * c];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                dense[(y * w + x) * c + ch] = if ch < hc { xp[x * hc + ch] } else { yp[y * hc + ch - hc] } as f64;
            }
        }
    }
    Ok((SeparablePos::upload(g, h, w, c, &xp, &yp).map_err(e2s)?, dense))
}

/// One convolution case's options.
#[derive(Clone, Copy, Debug)]
struct ConvOpts {
    fmt: WeightFormat,
    relu_in: bool,
    bias: bool,
    relu: bool,
    pos: bool,
    res: bool,
    add: bool,
    /// Special tokens before each frame's pixels (the input is a strided view).
    lead: usize,
}

const PLAIN: ConvOpts = ConvOpts { fmt: WeightFormat::F16, relu_in: false, bias: false, relu: false, pos: false, res: false, add: false, lead: 0 };

/// Apply the epilogue on the CPU: relu(acc + bias) + pos + relu(res) + add, per output element.
fn conv_epilogue_ref(want: &mut [f64], c_out: usize, o: &ConvOpts, bias: &[f32], pos: &[f64], res: &[f32], add: &[f32]) {
    let per_frame = pos.len().max(1);
    for (i, v) in want.iter_mut().enumerate() {
        if o.bias {
            *v += bias[i % c_out] as f64;
        }
        if o.relu {
            *v = v.max(0.0);
        }
        if o.pos {
            *v += pos[i % per_frame];
        }
        if o.res {
            *v += (res[i] as f64).max(0.0);
        }
        if o.add {
            *v += add[i] as f64;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn conv_check(g: &Gpu, r: &mut Rng, d: cpu::Nhwc, c_out: usize, k: usize, stride: usize, transpose: bool, o: ConvOpts) -> CaseOutcome {
    let tokens = o.lead + d.h * d.w;
    let full = as_stored(g, &r.normals(d.f * tokens * d.c, 1.0));
    // The pixels the kernel sees (without the lead tokens), ReLU'd if it applies one on read.
    let mut x: Vec<f32> = (0..d.f).flat_map(|f| full[(f * tokens + o.lead) * d.c..(f + 1) * tokens * d.c].to_vec()).collect();
    if o.relu_in {
        x.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    let (rows, cols) = if transpose { (d.c, c_out * k * k) } else { (c_out, d.c * k * k) };
    let packed = PackedWeight::pack(o.fmt, &r.normals(rows * cols, 0.1), rows, cols);
    let wd = packed.unpack();
    let (mut want, od) = if transpose { cpu::conv_transpose_nhwc(&x, d, &wd, c_out, k, k) } else { cpu::conv2d_nhwc(&x, d, &wd, c_out, k, stride, (k - 1) / 2) };
    let bias = r.normals(c_out, 0.3);
    let res = as_stored(g, &r.normals(od.len(), 1.0));
    let add = as_stored(g, &r.normals(od.len(), 1.0));
    let (pos_t, pos) = if o.pos {
        let (t, p) = random_pos(g, r, od.h, od.w, c_out)?;
        (Some(t), p)
    } else {
        (None, vec![])
    };
    conv_epilogue_ref(&mut want, c_out, &o, &bias, &pos, &res, &add);

    let xt = g.upload_act(&full, &[d.f, tokens, d.c]).map_err(e2s)?;
    let wt = Weight::upload(g, &packed, "w").map_err(e2s)?;
    let bt = g.upload_f32(&bias, &[c_out]).map_err(e2s)?;
    let rt = g.upload_act(&res, &[od.f, od.h, od.w, od.c]).map_err(e2s)?;
    let at = g.upload_act(&add, &[od.f, od.h, od.w, od.c]).map_err(e2s)?;
    let got = run(g, |rec| {
        let view = ImageView { t: &xt, frames: d.f, h: d.h, w: d.w, c: d.c, frame_stride: tokens * d.c, off: o.lead * d.c };
        let epi = ConvEpilogue { bias: o.bias.then_some(&bt), relu: o.relu, pos: pos_t.as_ref(), res_relu: o.res.then_some(&rt), add: o.add.then_some(&at) };
        let y = if transpose { conv_transpose2d(rec, view, &wt, k, o.relu_in, epi)? } else { conv2d(rec, view, &wt, k, stride, o.relu_in, epi)? };
        assert_eq!(y.shape, [od.f, od.h, od.w, od.c]);
        Ok(y)
    })
    .await?;
    let label = format!(
        "{}x{}x{}x{} -> {} k{k} s{stride} {}{}",
        d.f,
        d.h,
        d.w,
        d.c,
        c_out,
        o.fmt.name(),
        [(o.relu_in, " relu_in"), (o.bias, " bias"), (o.relu, " relu"), (o.pos, " pos"), (o.res, " res"), (o.add, " add"), (o.lead > 0, " view")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect::<String>()
    );
    compare(&label, &got, &want, tol(g, 1e-4))
}

async fn conv2d_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    use cpu::Nhwc as D;
    let f16 = PLAIN;
    let cases = [
        // A residual unit's first conv: ReLU on the input and the output, bias.
        (D { f: 2, h: 13, w: 11, c: 37 }, 70, 3, 1, ConvOpts { relu_in: true, bias: true, relu: true, ..f16 }),
        // Its second conv: bias + relu(residual) + another addend.
        (D { f: 1, h: 20, w: 17, c: 8 }, 130, 3, 1, ConvOpts { fmt: WeightFormat::Q8, bias: true, res: true, add: true, ..f16 }),
        // Stride 2 (the DPT's fourth resize layer), odd sizes.
        (D { f: 2, h: 9, w: 7, c: 19 }, 5, 3, 2, ConvOpts { bias: true, ..f16 }),
        (D { f: 1, h: 4, w: 6, c: 33 }, 66, 3, 2, ConvOpts { fmt: WeightFormat::Q4, ..f16 }),
        // 1x1 projection of the patch tokens after 5 special tokens, + bias + positional table.
        (D { f: 3, h: 5, w: 6, c: 67 }, 36, 1, 1, ConvOpts { bias: true, pos: true, lead: 5, ..f16 }),
        (D { f: 1, h: 3, w: 4, c: 5 }, 7, 3, 1, ConvOpts { fmt: WeightFormat::F32, relu_in: true, ..f16 }),
        // More output channels than one tile and many input channels (several K tiles per tap).
        (D { f: 1, h: 6, w: 10, c: 96 }, 129, 3, 1, ConvOpts { bias: true, ..f16 }),
        // Fewer than 4 input channels: one K step spans several taps.
        (D { f: 2, h: 5, w: 7, c: 3 }, 10, 3, 1, ConvOpts { bias: true, ..f16 }),
        (D { f: 1, h: 4, w: 5, c: 1 }, 3, 3, 2, ConvOpts { fmt: WeightFormat::Q8, relu_in: true, ..f16 }),
    ];
    let mut notes = Vec::new();
    for (d, c_out, k, s, o) in cases {
        notes.push(conv_check(g, r, d, c_out, k, s, false, o).await?);
    }
    summary(notes)
}

async fn conv_transpose_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    use cpu::Nhwc as D;
    let cases = [
        (D { f: 2, h: 5, w: 7, c: 37 }, 19, 4, ConvOpts { bias: true, ..PLAIN }),
        (D { f: 1, h: 3, w: 4, c: 70 }, 66, 2, ConvOpts { fmt: WeightFormat::Q8, relu_in: true, bias: true, ..PLAIN }),
        (D { f: 3, h: 2, w: 3, c: 9 }, 5, 2, ConvOpts { fmt: WeightFormat::Q4, add: true, ..PLAIN }),
        (D { f: 1, h: 4, w: 3, c: 8 }, 8, 4, ConvOpts { fmt: WeightFormat::F32, bias: true, lead: 5, ..PLAIN }),
    ];
    let mut notes = Vec::new();
    for (d, c_out, k, o) in cases {
        notes.push(conv_check(g, r, d, c_out, k, k, true, o).await?);
    }
    summary(notes)
}

async fn bilinear_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    use cpu::Nhwc as D;
    // (input, output size, positional table, addend)
    let cases = [
        (D { f: 2, h: 3, w: 4, c: 13 }, 7, 9, false, false),
        (D { f: 1, h: 6, w: 8, c: 6 }, 11, 14, true, false),
        (D { f: 3, h: 5, w: 5, c: 2 }, 1, 3, false, true),
        (D { f: 1, h: 24, w: 32, c: 4 }, 42, 56, true, false),
        (D { f: 2, h: 9, w: 9, c: 3 }, 4, 5, false, true),
        (D { f: 1, h: 1, w: 1, c: 5 }, 2, 3, false, false),
    ];
    let mut notes = Vec::new();
    for (d, ho, wo, with_pos, with_add) in cases {
        let x = as_stored(g, &r.normals(d.len(), 1.0));
        let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let (mut want, od) = cpu::bilinear_nhwc(&xd, d, ho, wo);
        let add = as_stored(g, &r.normals(od.len(), 1.0));
        let (pos_t, pos) = if with_pos {
            let (t, p) = random_pos(g, r, ho, wo, d.c)?;
            (Some(t), p)
        } else {
            (None, vec![])
        };
        for (i, v) in want.iter_mut().enumerate() {
            if with_pos {
                *v += pos[i % pos.len()];
            }
            if with_add {
                *v += add[i] as f64;
            }
        }
        let xt = g.upload_act(&x, &[d.f, d.h, d.w, d.c]).map_err(e2s)?;
        let at = g.upload_act(&add, &[od.f, od.h, od.w, od.c]).map_err(e2s)?;
        let got = run(g, |rec| bilinear(rec, &xt, ho, wo, pos_t.as_ref(), with_add.then_some(&at))).await?;
        let label = format!("{}x{}x{}x{} -> {ho}x{wo}{}{}", d.f, d.h, d.w, d.c, if with_pos { " pos" } else { "" }, if with_add { " add" } else { "" });
        notes.push(compare(&label, &got, &want, tol(g, 1e-5))?);
    }
    summary(notes)
}

async fn head_act_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let (frames, h, w, c, total, frame0) = (2, 5, 7, 4, 4, 1);
    let px = h * w;
    let acts = [ValueAct::Exp, ValueAct::InvLog, ValueAct::XyInvLog, ValueAct::Norm, ValueAct::NormExp, ValueAct::Relu, ValueAct::Sigmoid, ValueAct::Linear];
    let confs = [ConfAct::Expp1, ConfAct::Expp0, ConfAct::Sigmoid];
    let mut notes = Vec::new();
    for (i, act) in acts.into_iter().enumerate() {
        let conf_act = confs[i % confs.len()];
        let x = as_stored(g, &r.normals(frames * px * c, 1.0));
        let nv = c - 1;
        let mut want_v = Vec::new();
        let mut want_c = Vec::new();
        for p in x.chunks(c) {
            let v: Vec<f64> = p[..nv].iter().map(|&e| e as f64).collect();
            let nrm = v.iter().map(|e| e * e).sum::<f64>().sqrt();
            for (j, &e) in v.iter().enumerate() {
                want_v.push(match act {
                    ValueAct::Exp => e.exp(),
                    ValueAct::InvLog => cpu::inverse_log(e),
                    ValueAct::XyInvLog => {
                        let z = cpu::inverse_log(v[2]);
                        if j < 2 {
                            e * z
                        } else {
                            z
                        }
                    }
                    ValueAct::Norm => e / nrm,
                    ValueAct::NormExp => e / nrm.max(1e-8) * nrm.max(1e-8).exp_m1(),
                    ValueAct::Relu => e.max(0.0),
                    ValueAct::Sigmoid => 1.0 / (1.0 + (-e).exp()),
                    ValueAct::Linear => e,
                });
            }
            let cv = p[nv] as f64;
            want_c.push(match conf_act {
                ConfAct::Expp1 => 1.0 + cv.exp(),
                ConfAct::Expp0 => cv.exp(),
                ConfAct::Sigmoid => 1.0 / (1.0 + (-cv).exp()),
            });
        }
        let xt = g.upload_act(&x, &[frames, h, w, c]).map_err(e2s)?;
        let vt = g.alloc(&[total, h, w, nv], crate::gpu::DType::F32).map_err(e2s)?;
        let ct = g.alloc(&[total, h, w], crate::gpu::DType::F32).map_err(e2s)?;
        let mut rec = Recorder::new(g);
        head_activation(&mut rec, &xt, act, conf_act, &vt, &ct, frame0).map_err(e2s)?;
        rec.submit().map_err(e2s)?;
        let gv = g.read_f32(&vt).await.map_err(e2s)?;
        let gc = g.read_f32(&ct).await.map_err(e2s)?;
        let (v0, c0) = (frame0 * px * nv, frame0 * px);
        // f32 outputs from f32 math on (possibly f16-rounded) inputs.
        notes.push(compare(&format!("{act:?} values"), &gv[v0..v0 + frames * px * nv], &want_v, 1e-5)?);
        notes.push(compare(&format!("{conf_act:?} confidence"), &gc[c0..c0 + frames * px], &want_c, 1e-5)?);
    }
    summary(notes)
}

/// A weight's row range copied on the GPU multiplies exactly as those rows of the whole matrix
/// (every format; ranges that start mid-matrix, as q / k / v of a fused qkv).
async fn slice_rows_case(g: &Gpu, r: &mut Rng) -> CaseOutcome {
    let (m, rows, cols) = (5, 3 * 38, 70);
    let x = as_stored(g, &r.normals(m * cols, 1.0));
    let xt = g.upload_act(&x, &[m, cols]).map_err(e2s)?;
    let mut notes = Vec::new();
    for fmt in WeightFormat::all() {
        let packed = PackedWeight::pack(fmt, &r.normals(rows * cols, 0.1), rows, cols);
        let w = Weight::upload(g, &packed, "w").map_err(e2s)?;
        let full = run(g, |rec| linear_with(rec, &xt, &w, Epilogue::none(), Path::Gemm)).await?;
        for (r0, r1) in [(0, 38), (38, 76), (76, 114)] {
            let part = w.slice_rows(g, r0, r1).map_err(e2s)?;
            let got = run(g, |rec| linear_with(rec, &xt, &part, Epilogue::none(), Path::Gemm)).await?;
            let want: Vec<f64> = (0..m).flat_map(|i| full[i * rows + r0..i * rows + r1].iter().map(|&v| v as f64).collect::<Vec<_>>()).collect();
            notes.push(compare(&format!("{} rows {r0}..{r1}", fmt.name()), &got, &want, 0.0)?);
        }
    }
    summary(notes)
}
