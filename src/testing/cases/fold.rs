//! The folded decode attention (`kernels::fold`) as a kernel case: RMSNorm, q | k | v + bias +
//! M-RoPE, the cache write, causal grouped-query attention over the cache and this step's rows,
//! the o projection and the residual, from the two dispatches `qkv_attend` and `linear_merged`.
//! The reference is the layer's attention half written from the math in f64 on the dequantised
//! weights, rounding on the f16 path where activations are stored (the normalised X, q | k | v,
//! the attention's output). Caches short and long enough for one to four key ranges, an empty
//! one, one to four rows, Qwen2.5-VL-3B's and 7B's heads.

use super::decode::{check_cache_rows, matmul64, stored, weight, QkvProblem};
use super::{act, e2s, f32s, measure, Def, Scale, Setup, Tol};
use crate::gpu::{DType, Gpu};
use crate::kernels::decode::QkvOut;
use crate::kernels::fold::{linear_merged, qkv_attend};
use crate::kernels::rope::RopeKind;
use crate::testing::util::{as_stored, Rng};
use crate::weights::WeightFormat;

#[derive(Debug)]
pub(super) struct Fold {
    fmt: WeightFormat,
    m: usize,
    k: usize,
    heads: usize,
    kv_heads: usize,
    hd: usize,
    /// Keys cached before the step (random), and the cache's rows.
    past: usize,
    cap: usize,
    bias: bool,
}

pub(super) fn fold_def() -> Def<Fold> {
    Def::new(
        || {
            let formats = [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8, WeightFormat::Q4];
            let mut rows = Vec::new();
            for (fi, &fmt) in formats.iter().enumerate() {
                // K a multiple of 4 and not; head dims 16, 32, 40, 24; GQA 2:1, 3:1 and none; an
                // empty cache, one key range, two (past > 1024) and three.
                let small = [(64, 4, 2, 16, 5), (75, 3, 1, 32, 0), (96, 6, 2, 40, 1300), (48, 2, 2, 24, 2100)];
                for (si, &(k, heads, kv_heads, hd, past)) in small.iter().enumerate() {
                    let m = 1 + (fi + si) % 4;
                    rows.push(Fold { fmt, m, k, heads, kv_heads, hd, past, cap: past + m + 2, bias: si == 1 });
                }
            }
            // Qwen2.5-VL-3B: 16 query heads, 2 kv heads of 128, over a video's context (the most
            // key ranges, 4).
            rows.push(Fold { fmt: WeightFormat::Q4, m: 1, k: 2048, heads: 16, kv_heads: 2, hd: 128, past: 3100, cap: 3101, bias: false });
            // Qwen2.5-VL-7B: the widest X (3584), 28 / 4 heads.
            rows.push(Fold { fmt: WeightFormat::Q8, m: 2, k: 3584, heads: 28, kv_heads: 4, hd: 128, past: 700, cap: 702, bias: false });
            rows
        },
        |v| {
            format!(
                "{} {}x{} heads {}/{}x{} past {} of {}{}",
                v.fmt.name(),
                v.m,
                v.k,
                v.heads,
                v.kv_heads,
                v.hd,
                v.past,
                v.cap,
                if v.bias { " + o bias" } else { "" }
            )
        },
        |_| Tol::act(1e-4),
        fold_setup,
    )
    .perf(
        |s| {
            let past = if s == Scale::Full { 4095 } else { 511 };
            [WeightFormat::Q8, WeightFormat::Q4]
                .into_iter()
                .map(|fmt| Fold { fmt, m: 1, k: 2048, heads: 16, kv_heads: 2, hd: 128, past, cap: past + 1, bias: false })
                .collect()
        },
        // The q | k | v and o matrices, and the cached keys and values once.
        |v, a| {
            let (q, kv) = (v.heads * v.hd, v.kv_heads * v.hd);
            ((q + 2 * kv + q) * v.k) as f64 * v.fmt.bits_per_weight() / 8.0 + (2 * v.past * kv) as f64 * a
        },
        |v| 2.0 * (v.m * v.k * (2 * v.heads * v.hd + 2 * v.kv_heads * v.hd)) as f64 + 4.0 * (v.m * v.heads * v.hd * v.past) as f64,
    )
}

fn fold_setup(g: &Gpu, r: &mut Rng, v: &Fold) -> Result<Setup, String> {
    let &Fold { fmt, m, k, heads, kv_heads, hd, past, cap, bias } = v;
    let (q_dim, kv_dim) = (heads * hd, kv_heads * hd);
    let n = q_dim + 2 * kv_dim;
    let kind = RopeKind::MRope { theta: 1_000_000.0, sections: [hd / 8, hd * 3 / 16, hd / 2 - hd / 8 - hd * 3 / 16] };
    let (problem, up) = QkvProblem::new(g, r, fmt, m, k, (heads, kv_heads, hd), kind)?;
    let (wo, po) = weight(g, r, fmt, k, q_dim)?;
    let o_bias = r.normals(k, 0.5);
    let residual = as_stored(g, &r.normals(m * k, 1.0));
    let pos: Vec<i32> = (0..m).flat_map(|i| [(past + i) as i32, (past / 8 + 2 * i) as i32, (past / 4 + i) as i32]).collect();
    // Cached keys and values of the earlier tokens: about the scale the projections give.
    let mut cache = as_stored(g, &r.normals(2 * cap * kv_dim, 1.5));
    let marker = as_stored(g, &[-7.75])[0];
    for row in [past..cap, cap + past..2 * cap] {
        cache[row.start * kv_dim..row.end * kv_dim].fill(marker);
    }
    let obt = f32s(g, &o_bias, &[k])?;
    let rt = act(g, &residual, &[m, k])?;
    let pt = g.upload_i32(&pos, &[m, 3]).map_err(e2s)?;
    let ct = act(g, &cache, &[2 * cap, kv_dim])?;
    let f16 = g.act == DType::F16;
    Ok(Setup::rule(
        move |rec| {
            let out = QkvOut { cache: &ct, v_base: cap * kv_dim, past, heads, kv_heads, pos: &pt, rope: &up.rope };
            let [wq, wk, wv] = &up.w;
            let folded = qkv_attend(rec, &up.x, &up.aux, [wq, wk, wv], &out)?;
            let y = linear_merged(rec, &folded, &wo, bias.then_some(&obt), &rt)?;
            Ok(vec![y, ct.clone()])
        },
        move |got| {
            let st = stored(f16);
            let y = problem.reference(&pos, st);
            // Keys and values of every position: the cache's, then this step's rows.
            let key = |j: usize, hk: usize, d: usize| if j < past { cache[j * kv_dim + hk * hd + d] as f64 } else { y[(j - past) * n + q_dim + hk * hd + d] };
            let value = |j: usize, hk: usize, d: usize| {
                if j < past {
                    cache[(cap + j) * kv_dim + hk * hd + d] as f64
                } else {
                    y[(j - past) * n + q_dim + kv_dim + hk * hd + d]
                }
            };
            let scale = 1.0 / (hd as f64).sqrt();
            let mut o = vec![0f64; m * q_dim];
            for i in 0..m {
                for h in 0..heads {
                    let hk = h / (heads / kv_heads);
                    let q = &y[i * n + h * hd..i * n + (h + 1) * hd];
                    let scores: Vec<f64> = (0..=past + i).map(|j| (0..hd).map(|d| q[d] * key(j, hk, d)).sum::<f64>() * scale).collect();
                    let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let p: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                    let l: f64 = p.iter().sum();
                    for d in 0..hd {
                        o[i * q_dim + h * hd + d] = st(p.iter().enumerate().map(|(j, pj)| pj * value(j, hk, d)).sum::<f64>() / l);
                    }
                }
            }
            let want: Vec<f64> = matmul64(&o, &po.unpack(), m, k, q_dim)
                .iter()
                .enumerate()
                .map(|(i, &s)| s + if bias { o_bias[i % k] as f64 } else { 0.0 } + residual[i] as f64)
                .collect();
            let err = measure(&got[0], &want).map_err(|e| format!("output: {e}"))?.err;
            Ok(err.max(check_cache_rows(&got[1], &y, (past, cap, m), (q_dim, kv_dim), |i| cache[i])?))
        },
    ))
}
