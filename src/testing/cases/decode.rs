//! The fused decode GEMVs (`kernels::decode`) as kernel cases: RMSNorm + q | k | v + bias +
//! M-RoPE + the KV-cache write; RMSNorm + gate / up + SiLU * up; RMSNorm + a matrix in row parts
//! (the lm_head); the attention's key ranges merged + o projection + residual. Every weight format,
//! one to four rows of X, odd sizes and Qwen2.5-VL-3B's and 7B's. The references are written from the
//! math in f64 on the dequantised weights; on the f16 path they round where activations are
//! stored (the normalised or merged X, q | k | v before the rotation, SiLU(gate)), as the f16
//! path defines it.

use super::{act, e2s, f32s, measure, rope_angles, Def, Scale, Setup, Tol};
use crate::gpu::{DType, Gpu, Tensor};
use crate::kernels::decode::{gate_up_swiglu, linear_combined, linear_normed, linear_normed_parts, qkv_rope_kv, NormIn, QkvAux, QkvOut, Ranges};
use crate::kernels::rope::{RopeKind, RopeTable};
use crate::testing::reference as cpu;
use crate::testing::util::{as_stored, Rng};
use crate::weights::{PackedWeight, Weight, WeightFormat};

const FORMATS: [WeightFormat; 4] = [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4];
pub(super) const EPS: f32 = 1e-6;

/// A random weight [rows, cols] packed in `fmt` and uploaded; the packed form gives the
/// reference its dequantised values.
pub(super) fn weight(g: &Gpu, r: &mut Rng, fmt: WeightFormat, rows: usize, cols: usize) -> Result<(Weight, PackedWeight), String> {
    let packed = PackedWeight::pack(fmt, &r.normals(rows * cols, 0.05), rows, cols);
    Ok((Weight::upload(g, &packed, "w").map_err(e2s)?, packed))
}

/// Rounds a value as the device stores an activation (f16 path: through f16).
pub(super) fn stored(f16: bool) -> impl Fn(f64) -> f64 + Copy {
    move |v| if f16 { half::f16::from_f64(v).to_f64() } else { v }
}

/// RMSNorm of each row of x [m, k] with weight g, as stored.
pub(super) fn normed(x: &[f32], g: &[f32], k: usize, st: impl Fn(f64) -> f64) -> Vec<f64> {
    cpu::rms_norm(x, g, k, EPS as f64).into_iter().map(st).collect()
}

/// y[m, n] = sum_k x[m, k] w[n, k] with x in f64.
pub(super) fn matmul64(x: &[f64], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
    (0..m * n).map(|i| (0..k).map(|t| x[(i / n) * k + t] * w[(i % n) * k + t] as f64).sum()).collect()
}

/// rotate_half RoPE of one head of f64 values with per-channel angles.
pub(super) fn rope64(x: &[f64], angle: &[f64]) -> Vec<f64> {
    let h = x.len() / 2;
    (0..x.len()).map(|c| x[c] * angle[c].cos() + if c < h { -x[c + h] } else { x[c - h] } * angle[c].sin()).collect()
}

fn matrix_bytes(fmt: WeightFormat, n: usize, k: usize) -> f64 {
    (n * k) as f64 * fmt.bits_per_weight() / 8.0
}

// ================================================================ q | k | v + M-RoPE + KV cache

#[derive(Debug)]
pub(super) struct Qkv {
    fmt: WeightFormat,
    m: usize,
    k: usize,
    heads: usize,
    kv_heads: usize,
    hd: usize,
    sections: [usize; 3],
    /// Rows already in the cache; the step writes rows past..past + m of a cache of `cap` rows.
    past: usize,
    cap: usize,
    maxpos: usize,
}

impl Qkv {
    fn n(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.hd
    }
}

pub(super) fn qkv_def() -> Def<Qkv> {
    Def::new(
        || {
            let mut rows = Vec::new();
            for (fi, &fmt) in FORMATS.iter().enumerate() {
                // K a multiple of 4 (q4 reads X as vec4s) and not; head dims 16 and 32; GQA 2:1 and 3:1.
                let small = [(64, 4, 2, 16, [2, 3, 3], 5, 9), (75, 2, 1, 32, [4, 6, 6], 0, 6), (96, 6, 2, 32, [6, 4, 6], 17, 23)];
                for (si, &(k, heads, kv_heads, hd, sections, past, cap)) in small.iter().enumerate() {
                    let m = 1 + (fi + si) % 4;
                    rows.push(Qkv { fmt, m, k, heads, kv_heads, hd, sections, past, cap: cap.max(past + m + 1), maxpos: 300 });
                }
                // Qwen2.5-VL-3B's attention: 16 query heads, 2 kv heads of 128, sections [16, 24, 24].
                let m = 4 - fi;
                rows.push(Qkv { fmt, m, k: 2048, heads: 16, kv_heads: 2, hd: 128, sections: [16, 24, 24], past: 301, cap: 310, maxpos: 5000 });
            }
            // Qwen2.5-VL-7B's: the widest X the prologue stages (3584), 28 / 4 heads.
            rows.push(Qkv { fmt: WeightFormat::Q4, m: 2, k: 3584, heads: 28, kv_heads: 4, hd: 128, sections: [16, 24, 24], past: 1000, cap: 1003, maxpos: 5000 });
            rows
        },
        |v| format!("{} {}x{} heads {}/{}x{} sec {:?} past {} of {}", v.fmt.name(), v.m, v.k, v.heads, v.kv_heads, v.hd, v.sections, v.past, v.cap),
        |_| Tol::act(1e-4),
        qkv_setup,
    )
    .perf(
        |s| {
            let (m, cap) = if s == Scale::Full { (1, 4096) } else { (1, 512) };
            [WeightFormat::Q8, WeightFormat::Q4]
                .into_iter()
                .map(|fmt| Qkv { fmt, m, k: 2048, heads: 16, kv_heads: 2, hd: 128, sections: [16, 24, 24], past: cap - 1, cap, maxpos: 5000 })
                .collect()
        },
        |v, a| matrix_bytes(v.fmt, v.n(), v.k) + (v.m * (v.k + v.n())) as f64 * a,
        |v| 2.0 * (v.m * v.n() * v.k) as f64,
    )
}

/// A q/k/v pass's random problem, shared with the folded case (`cases::fold`): X, the norm's
/// weight, the three matrices and biases, on the host for the reference and uploaded.
pub(super) struct QkvProblem {
    m: usize,
    k: usize,
    heads: usize,
    kv_heads: usize,
    hd: usize,
    kind: RopeKind,
    x: Vec<f32>,
    gn: Vec<f32>,
    packed: Vec<PackedWeight>,
    bias: Vec<f32>,
}

/// What the device holds of a `QkvProblem`.
pub(super) struct QkvUploaded {
    pub w: [Weight; 3],
    pub x: Tensor,
    pub aux: QkvAux,
    pub rope: RopeTable,
}

impl QkvProblem {
    pub fn new(
        g: &Gpu,
        r: &mut Rng,
        fmt: WeightFormat,
        m: usize,
        k: usize,
        (heads, kv_heads, hd): (usize, usize, usize),
        kind: RopeKind,
    ) -> Result<(QkvProblem, QkvUploaded), String> {
        let (q_dim, kv_dim) = (heads * hd, kv_heads * hd);
        let x = as_stored(g, &r.normals(m * k, 1.0));
        let gn: Vec<f32> = r.normals(k, 0.3).iter().map(|w| 1.0 + w).collect();
        let (wq, pq) = weight(g, r, fmt, q_dim, k)?;
        let (wk, pk) = weight(g, r, fmt, kv_dim, k)?;
        let (wv, pv) = weight(g, r, fmt, kv_dim, k)?;
        let biases = [r.normals(q_dim, 0.5), r.normals(kv_dim, 0.5), r.normals(kv_dim, 0.5)];
        let rope = RopeTable::new(g, kind, hd).map_err(e2s)?;
        let gt = f32s(g, &gn, &[k])?;
        let bt: Vec<Tensor> = biases.iter().map(|b| f32s(g, b, &[b.len()])).collect::<Result<_, _>>()?;
        let aux = QkvAux::new(g, NormIn { weight: &gt, eps: EPS }, [&bt[0], &bt[1], &bt[2]], &rope).map_err(e2s)?;
        let up = QkvUploaded { w: [wq, wk, wv], x: act(g, &x, &[m, k])?, aux, rope };
        Ok((QkvProblem { m, k, heads, kv_heads, hd, kind, x, gn, packed: vec![pq, pk, pv], bias: biases.concat() }, up))
    }

    /// q | k | v [m, (heads + 2 kv_heads) hd] in f64 at M-RoPE positions `pos` [m, 3]: normed X
    /// (as stored), the product + bias (as stored), q and k rotated (as stored).
    pub fn reference(&self, pos: &[i32], st: impl Fn(f64) -> f64 + Copy) -> Vec<f64> {
        let QkvProblem { m, k, heads, kv_heads, hd, kind, .. } = *self;
        let n = (heads + 2 * kv_heads) * hd;
        let w: Vec<f32> = self.packed.iter().flat_map(|p| p.unpack()).collect();
        let mut y: Vec<f64> = matmul64(&normed(&self.x, &self.gn, k, st), &w, m, n, k).iter().enumerate().map(|(i, &s)| st(s + self.bias[i % n] as f64)).collect();
        for i in 0..m {
            let angle = &rope_angles(kind, hd, &pos[3 * i..3 * i + 3])[0];
            for h in 0..heads + kv_heads {
                let s = i * n + h * hd;
                let rot: Vec<f64> = rope64(&y[s..s + hd], angle).into_iter().map(st).collect();
                y[s..s + hd].copy_from_slice(&rot);
            }
        }
        y
    }
}

fn qkv_setup(g: &Gpu, r: &mut Rng, v: &Qkv) -> Result<Setup, String> {
    let &Qkv { fmt, m, k, heads, kv_heads, hd, sections, past, cap, maxpos } = v;
    let (q_dim, kv_dim) = (heads * hd, kv_heads * hd);
    let n = q_dim + 2 * kv_dim;
    let kind = RopeKind::MRope { theta: 1_000_000.0, sections };
    let (problem, up) = QkvProblem::new(g, r, fmt, m, k, (heads, kv_heads, hd), kind)?;
    // M-RoPE positions with distinct t / h / w components (h < maxpos / 8 <= w).
    let pos: Vec<i32> = (0..m).flat_map(|_| [r.below(maxpos), r.below(maxpos / 8), maxpos / 8 + r.below(maxpos / 8)]).map(|p| p as i32).collect();
    // The cache's other rows hold a marker, which the step must leave alone.
    let marker = as_stored(g, &[-7.75])[0];
    let pt = g.upload_i32(&pos, &[m, 3]).map_err(e2s)?;
    let cache = act(g, &vec![marker; 2 * cap * kv_dim], &[2 * cap, kv_dim])?;
    let f16 = g.act == DType::F16;
    Ok(Setup::rule(
        move |rec| {
            let out = QkvOut { cache: &cache, v_base: cap * kv_dim, past, heads, kv_heads, pos: &pt, rope: &up.rope };
            let [wq, wk, wv] = &up.w;
            let q = qkv_rope_kv(rec, &up.x, &up.aux, [wq, wk, wv], &out)?;
            Ok(vec![q, cache.clone()])
        },
        move |got| {
            let y = problem.reference(&pos, stored(f16));
            let (q, kv) = (&got[0], &got[1]);
            let want_q: Vec<f64> = (0..m).flat_map(|i| y[i * n..i * n + q_dim].to_vec()).collect();
            let mut err = measure(q, &want_q).map_err(|e| format!("q: {e}"))?.err;
            err = err.max(check_cache_rows(kv, &y, (past, cap, m), (q_dim, kv_dim), |_| marker)?);
            Ok(err)
        },
    ))
}

/// This step's keys and values (rows `past..past + m` of the keys and of the values, which start at
/// row `cap`) against q | k | v `y`, and every other row of the cache as it was (`before(i)`).
pub(super) fn check_cache_rows(
    kv: &[f32],
    y: &[f64],
    (past, cap, m): (usize, usize, usize),
    (q_dim, kv_dim): (usize, usize),
    before: impl Fn(usize) -> f32,
) -> Result<f64, String> {
    let n = q_dim + 2 * kv_dim;
    let rows_of = |off: usize| (0..m).flat_map(|i| y[i * n + off..i * n + off + kv_dim].to_vec()).collect::<Vec<_>>();
    let v_row0 = cap + past;
    let got_k = &kv[past * kv_dim..(past + m) * kv_dim];
    let got_v = &kv[v_row0 * kv_dim..(v_row0 + m) * kv_dim];
    let mut err = 0f64;
    for (what, g, w) in [("keys", got_k, rows_of(q_dim)), ("values", got_v, rows_of(q_dim + kv_dim))] {
        err = err.max(measure(g, &w).map_err(|e| format!("{what}: {e}"))?.err);
    }
    let written = |row: usize| (past..past + m).contains(&row) || (v_row0..v_row0 + m).contains(&row);
    if let Some(i) = (0..2 * cap * kv_dim).find(|&i| !written(i / kv_dim) && kv[i] != before(i)) {
        return Err(format!("cache row {} (of {} x {kv_dim}) col {} changed: {} instead of {}", i / kv_dim, 2 * cap, i % kv_dim, kv[i], before(i)));
    }
    Ok(err)
}

// ================================================================ gate / up + SiLU * up

#[derive(Debug)]
pub(super) struct GateUp {
    fmt: WeightFormat,
    m: usize,
    k: usize,
    inter: usize,
    norm: bool,
}

pub(super) fn gate_up_def() -> Def<GateUp> {
    Def::new(
        || {
            let mut rows = Vec::new();
            for (fi, &fmt) in FORMATS.iter().enumerate() {
                // K a multiple of 4 (q4 reads X as vec4s) and not, each with and without the norm.
                for (si, &(k, inter, norm)) in [(64, 96, true), (75, 100, false), (98, 100, true), (132, 36, false)].iter().enumerate() {
                    rows.push(GateUp { fmt, m: 1 + (fi + si) % 4, k, inter, norm });
                }
            }
            // Qwen2.5-VL-3B's MLP.
            rows.push(GateUp { fmt: WeightFormat::Q4, m: 1, k: 2048, inter: 11008, norm: true });
            rows.push(GateUp { fmt: WeightFormat::Q8, m: 2, k: 2048, inter: 11008, norm: false });
            // The widest X the prologue stages.
            rows.push(GateUp { fmt: WeightFormat::F16, m: 3, k: 3584, inter: 100, norm: true });
            rows
        },
        |v| format!("{} {}x{} inter {} norm={}", v.fmt.name(), v.m, v.k, v.inter, v.norm),
        |_| Tol::act(1e-4),
        gate_up_setup,
    )
    .perf(
        |s| {
            let (k, inter) = if s == Scale::Full { (2048, 11008) } else { (1024, 2048) };
            [WeightFormat::Q8, WeightFormat::Q4].into_iter().map(|fmt| GateUp { fmt, m: 1, k, inter, norm: true }).collect()
        },
        |v, a| matrix_bytes(v.fmt, 2 * v.inter, v.k) + (v.m * (v.k + v.inter)) as f64 * a,
        |v| 4.0 * (v.m * v.inter * v.k) as f64,
    )
    .max_reps(50)
}

fn gate_up_setup(g: &Gpu, r: &mut Rng, v: &GateUp) -> Result<Setup, String> {
    let &GateUp { fmt, m, k, inter, norm } = v;
    let x = as_stored(g, &r.normals(m * k, 1.0));
    let gn: Vec<f32> = r.normals(k, 0.3).iter().map(|w| 1.0 + w).collect();
    let (wg, pg) = weight(g, r, fmt, inter, k)?;
    let (wu, pu) = weight(g, r, fmt, inter, k)?;
    let xt = act(g, &x, &[m, k])?;
    let gt = f32s(g, &gn, &[k])?;
    let f16 = g.act == DType::F16;
    Ok(Setup::one(
        move |rec| gate_up_swiglu(rec, &xt, norm.then_some(NormIn { weight: &gt, eps: EPS }), &wg, &wu),
        move || {
            let st = stored(f16);
            let xn = if norm { normed(&x, &gn, k, st) } else { x.iter().map(|&v| v as f64).collect() };
            let gate = matmul64(&xn, &pg.unpack(), m, inter, k);
            let up = matmul64(&xn, &pu.unpack(), m, inter, k);
            gate.iter().zip(&up).map(|(&gv, &u)| st(cpu::silu(gv)) * u).collect()
        },
    ))
}

// ================================================================ RMSNorm + a matrix in row parts

#[derive(Debug)]
pub(super) struct LmHead {
    fmt: WeightFormat,
    m: usize,
    k: usize,
    /// Rows of each part (one to three).
    parts: Vec<usize>,
    /// A bias (one part only: `linear_normed`).
    bias: bool,
}

pub(super) fn lm_head_def() -> Def<LmHead> {
    Def::new(
        || {
            let mut rows = Vec::new();
            for (fi, &fmt) in FORMATS.iter().enumerate() {
                let shapes: [(usize, Vec<usize>, bool); 4] =
                    [(64, vec![61], false), (75, vec![61], true), (96, vec![40, 37], false), (130, vec![33, 29, 31], false)];
                for (si, (k, parts, bias)) in shapes.into_iter().enumerate() {
                    rows.push(LmHead { fmt, m: 1 + (fi + si) % 4, k, parts, bias });
                }
            }
            // A wide matrix in three uneven parts at Qwen2.5-VL-3B's width.
            rows.push(LmHead { fmt: WeightFormat::Q8, m: 3, k: 2048, parts: vec![700, 700, 533], bias: false });
            rows.push(LmHead { fmt: WeightFormat::F16, m: 1, k: 2048, parts: vec![1001, 999], bias: false });
            // The widest X the prologue stages; a last part of fewer rows than a workgroup's.
            rows.push(LmHead { fmt: WeightFormat::Q4, m: 4, k: 3584, parts: vec![500, 499, 7], bias: false });
            rows
        },
        |v| format!("{} {}x{} parts {:?}{}", v.fmt.name(), v.m, v.k, v.parts, if v.bias { " + bias" } else { "" }),
        |_| Tol::act(1e-4),
        lm_head_setup,
    )
    .perf(
        |s| {
            // Qwen2.5-VL's tied 151 936-row embedding as the converter cuts it (three parts).
            let vocab: usize = if s == Scale::Full { 151_936 } else { 16_384 };
            let part = (vocab / 3).next_multiple_of(2);
            vec![LmHead { fmt: WeightFormat::Q8, m: 1, k: 2048, parts: vec![part, part, vocab - 2 * part], bias: false }]
        },
        |v, a| matrix_bytes(v.fmt, v.parts.iter().sum(), v.k) + (v.m * (v.k + v.parts.iter().sum::<usize>())) as f64 * a,
        |v| 2.0 * (v.m * v.parts.iter().sum::<usize>() * v.k) as f64,
    )
    .max_reps(20)
}

fn lm_head_setup(g: &Gpu, r: &mut Rng, v: &LmHead) -> Result<Setup, String> {
    let LmHead { fmt, m, k, ref parts, bias } = *v;
    let n: usize = parts.iter().sum();
    let x = as_stored(g, &r.normals(m * k, 1.0));
    let gn: Vec<f32> = r.normals(k, 0.3).iter().map(|w| 1.0 + w).collect();
    let mut ws = Vec::new();
    let mut packed = Vec::new();
    for &rows in parts {
        let (w, p) = weight(g, r, fmt, rows, k)?;
        ws.push(w);
        packed.push(p);
    }
    let b = r.normals(n, 0.5);
    let xt = act(g, &x, &[m, k])?;
    let gt = f32s(g, &gn, &[k])?;
    let bt = f32s(g, &b, &[n])?;
    let f16 = g.act == DType::F16;
    Ok(Setup::one(
        move |rec| {
            let norm = NormIn { weight: &gt, eps: EPS };
            if bias {
                linear_normed(rec, &xt, norm, &ws[0], Some(&bt))
            } else {
                linear_normed_parts(rec, &xt, norm, &ws)
            }
        },
        move || {
            let w: Vec<f32> = packed.iter().flat_map(|p| p.unpack()).collect();
            let y = matmul64(&normed(&x, &gn, k, stored(f16)), &w, m, n, k);
            y.iter().enumerate().map(|(i, &s)| if bias { s + b[i % n] as f64 } else { s }).collect()
        },
    ))
}

// ================================================================ key ranges merged + o + residual

#[derive(Debug)]
pub(super) struct OComb {
    fmt: WeightFormat,
    m: usize,
    heads: usize,
    hd: usize,
    n_split: usize,
    /// Output rows (the hidden width).
    n: usize,
    bias: bool,
}

pub(super) fn o_combined_def() -> Def<OComb> {
    Def::new(
        || {
            let mut rows = Vec::new();
            for (fi, &fmt) in FORMATS.iter().enumerate() {
                // K = heads x hd: 64, 75 (not a multiple of 4), 96; one range (nothing to merge) too.
                let shapes = [(4, 16, 3, 70, false), (5, 15, 2, 83, true), (3, 32, 5, 64, false), (2, 20, 1, 37, true)];
                for (si, &(heads, hd, n_split, n, bias)) in shapes.iter().enumerate() {
                    rows.push(OComb { fmt, m: 1 + (fi + si) % 4, heads, hd, n_split, n, bias });
                }
            }
            // Qwen2.5-VL-3B: 16 heads of 128 over 20 key ranges (a cache of about 5000), hidden 2048.
            rows.push(OComb { fmt: WeightFormat::Q4, m: 1, heads: 16, hd: 128, n_split: 20, n: 2048, bias: false });
            rows.push(OComb { fmt: WeightFormat::F16, m: 4, heads: 16, hd: 128, n_split: 20, n: 2048, bias: false });
            // Qwen2.5-VL-7B (28 heads: K = 3584, the widest staged) over the most ranges the
            // attention cuts (64); the most heads the prologue holds statistics for (64).
            rows.push(OComb { fmt: WeightFormat::Q8, m: 2, heads: 28, hd: 128, n_split: 64, n: 3584, bias: false });
            rows.push(OComb { fmt: WeightFormat::F32, m: 3, heads: 64, hd: 8, n_split: 4, n: 50, bias: true });
            rows
        },
        |v| format!("{} {} rows, {} heads x {} in {} ranges -> {}{}", v.fmt.name(), v.m, v.heads, v.hd, v.n_split, v.n, if v.bias { " + bias" } else { "" }),
        |_| Tol::act(1e-4),
        o_combined_setup,
    )
    .perf(
        |s| {
            let n_split = if s == Scale::Full { 20 } else { 4 };
            [WeightFormat::Q8, WeightFormat::Q4].into_iter().map(|fmt| OComb { fmt, m: 1, heads: 16, hd: 128, n_split, n: 2048, bias: false }).collect()
        },
        |v, a| {
            let k = v.heads * v.hd;
            matrix_bytes(v.fmt, v.n, k) + (v.m * v.heads * v.n_split * (v.hd + 2) * 4) as f64 + (2 * v.m * v.n) as f64 * a
        },
        |v| 2.0 * (v.m * v.n * v.heads * v.hd) as f64,
    )
}

fn o_combined_setup(g: &Gpu, r: &mut Rng, v: &OComb) -> Result<Setup, String> {
    let &OComb { fmt, m, heads, hd, n_split, n, bias } = v;
    let k = heads * hd;
    // Each (row, head)'s ranges as flash-decoding leaves them: a range's max score, its sum of
    // exp(score - max) and its unnormalised partial output (about sum x a mean value). The last
    // range of some heads is empty (max -3e38, sum 0, zeros), as a causal step's earlier rows
    // see: range 0 never is.
    let slots = m * heads * n_split;
    let mut part = vec![0f32; slots * hd];
    let mut ml = vec![0f32; slots * 2];
    for slot in 0..slots {
        let (i, h, s) = (slot / (heads * n_split), slot / n_split % heads, slot % n_split);
        if n_split > 1 && s == n_split - 1 && (i + h) % 2 == 0 {
            ml[2 * slot] = -3.0e38;
            continue;
        }
        let l = r.uniform(1.0, 40.0);
        ml[2 * slot] = r.normal() * 4.0;
        ml[2 * slot + 1] = l;
        for (d, p) in part[slot * hd..(slot + 1) * hd].iter_mut().enumerate() {
            *p = l * (r.normal() * 0.8 + if d % 3 == 0 { 0.3 } else { 0.0 });
        }
    }
    let (w, pw) = weight(g, r, fmt, n, k)?;
    let b = r.normals(n, 0.5);
    let res = as_stored(g, &r.normals(m * n, 1.0));
    let partt = f32s(g, &part, &[slots, hd])?;
    let mlt = f32s(g, &ml, &[slots, 2])?;
    let bt = f32s(g, &b, &[n])?;
    let rt = act(g, &res, &[m, n])?;
    let st = stored(g.act == DType::F16);
    Ok(Setup::one(
        move |rec| {
            let rg = Ranges { part: &partt, ml: &mlt, n_split, heads, head_dim: hd };
            linear_combined(rec, &rg, &w, bias.then_some(&bt), &rt)
        },
        move || {
            // Per (row, head): sum_s exp(m_s - M) part_s / sum_s exp(m_s - M) l_s over the
            // non-empty ranges, M their largest max.
            let mut o = vec![0f64; m * k];
            for i in 0..m {
                for h in 0..heads {
                    let base = (i * heads + h) * n_split;
                    let live: Vec<usize> = (base..base + n_split).filter(|&s| ml[2 * s + 1] > 0.0).collect();
                    let mx = live.iter().map(|&s| ml[2 * s] as f64).fold(f64::NEG_INFINITY, f64::max);
                    let l: f64 = live.iter().map(|&s| (ml[2 * s] as f64 - mx).exp() * ml[2 * s + 1] as f64).sum();
                    for d in 0..hd {
                        let acc: f64 = live.iter().map(|&s| (ml[2 * s] as f64 - mx).exp() * part[s * hd + d] as f64).sum();
                        o[i * k + h * hd + d] = st(acc / l);
                    }
                }
            }
            let y = matmul64(&o, &pw.unpack(), m, n, k);
            y.iter().enumerate().map(|(i, &s)| s + if bias { b[i % n] as f64 } else { 0.0 } + res[i] as f64).collect()
        },
    ))
}
