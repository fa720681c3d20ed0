//! CPU references in f64, written from the model definitions (not from the kernels).

/// y[m, n] = sum_k x[m, k] w[n, k]
pub fn matmul(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut y = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for t in 0..k {
                s += x[i * k + t] as f64 * w[j * k + t] as f64;
            }
            y[i * n + j] = s;
        }
    }
    y
}

pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

pub fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

/// DiT's adaLN modulation with a gated residual, per row t and column c:
/// res + gate * (x * (1 + scale) + shift), with mods row t = [shift | scale | gate].
pub fn modulate(x: &[f32], mods: &[f32], res: &[f32], cols: usize) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let (t, c) = (i / cols, i % cols);
            let m = |part: usize| mods[t * 3 * cols + part * cols + c] as f64;
            let (shift, scale, gate) = (m(0), m(1), m(2));
            res[i] as f64 + gate * (x[i] as f64 * (1.0 + scale) + shift)
        })
        .collect()
}

/// Attention of dense [tokens][heads][d] arrays; `visible(i, j)` is the mask.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_q: usize,
    n_kv: usize,
    hq: usize,
    hkv: usize,
    d: usize,
    scale: f64,
    visible: impl Fn(usize, usize) -> bool,
) -> Vec<f64> {
    let mut out = vec![0f64; n_q * hq * d];
    let group = hq / hkv;
    for i in 0..n_q {
        for h in 0..hq {
            let hk = h / group;
            let scores: Vec<Option<f64>> = (0..n_kv)
                .map(|j| visible(i, j).then(|| (0..d).map(|e| q[(i * hq + h) * d + e] as f64 * k[(j * hkv + hk) * d + e] as f64).sum::<f64>() * scale))
                .collect();
            let mx = scores.iter().flatten().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let mut z = 0f64;
            for (j, s) in scores.iter().enumerate() {
                if let Some(s) = s {
                    let p = (s - mx).exp();
                    z += p;
                    for e in 0..d {
                        out[(i * hq + h) * d + e] += p * v[(j * hkv + hk) * d + e] as f64;
                    }
                }
            }
            for e in 0..d {
                out[(i * hq + h) * d + e] /= z;
            }
        }
    }
    out
}

pub fn rms_norm(x: &[f32], w: &[f32], dim: usize, eps: f64) -> Vec<f64> {
    x.chunks(dim)
        .flat_map(|r| {
            let ms = r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / dim as f64;
            let inv = 1.0 / (ms + eps).sqrt();
            r.iter().zip(w).map(move |(&v, &g)| v as f64 * inv * g as f64).collect::<Vec<_>>()
        })
        .collect()
}

pub fn layer_norm(x: &[f32], w: Option<&[f32]>, b: Option<&[f32]>, dim: usize, eps: f64) -> Vec<f64> {
    x.chunks(dim)
        .flat_map(|r| {
            let mean = r.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
            let var = r.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
            let inv = 1.0 / (var + eps).sqrt();
            (0..dim)
                .map(|d| {
                    let mut y = (r[d] as f64 - mean) * inv;
                    if let Some(w) = w {
                        y *= w[d] as f64;
                    }
                    if let Some(b) = b {
                        y += b[d] as f64;
                    }
                    y
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// rotate_half RoPE of one head: out = x * cos + rotate_half(x) * sin, with per-channel angles
/// (`angle[c]` for c in 0..dim, first half equal to the second as in the references).
pub fn rope_head(x: &[f32], angle: &[f64]) -> Vec<f64> {
    let d = x.len();
    let h = d / 2;
    (0..d)
        .map(|c| {
            let rot = if c < h { -(x[c + h] as f64) } else { x[c - h] as f64 };
            x[c] as f64 * angle[c].cos() + rot * angle[c].sin()
        })
        .collect()
}

/// Probabilities of temperature-scaled logits.
pub fn softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let mx = logits.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let p: Vec<f64> = logits.iter().map(|&l| ((l as f64 - mx) / temperature).exp()).collect();
    let z: f64 = p.iter().sum();
    p.iter().map(|x| x / z).collect()
}

/// The token chosen by top-k then top-p filtering (as transformers' warpers: keep the k most
/// likely, then the smallest most-likely set whose mass reaches top_p), then a draw with `u`
/// walking the kept tokens in index order. Also returns the kept set's size.
pub fn sample(logits: &[f32], temperature: f64, top_k: usize, top_p: f64, u: f64) -> (usize, usize) {
    let p = softmax(logits, temperature);
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].partial_cmp(&p[a]).unwrap());
    let k = if top_k == 0 { p.len() } else { top_k.min(p.len()) };
    let kmass: f64 = order[..k].iter().map(|&i| p[i]).sum();
    let mut keep = 0;
    let mut acc = 0.0;
    for &i in &order[..k] {
        acc += p[i];
        keep += 1;
        if acc >= top_p * kmass {
            break;
        }
    }
    // Tokens tied with the last one kept are kept too: the cut is a probability threshold, as
    // in the GPU kernel, so the result never depends on how a sort orders equal values.
    let last = p[order[keep - 1]];
    while keep < p.len() && p[order[keep]] == last {
        keep += 1;
    }
    let mut kept: Vec<usize> = order[..keep].to_vec();
    kept.sort_unstable();
    let total: f64 = kept.iter().map(|&i| p[i]).sum();
    let goal = u * total;
    let mut run = 0.0;
    for &i in &kept {
        run += p[i];
        if run >= goal {
            return (i, keep);
        }
    }
    (*kept.last().unwrap(), keep)
}

/// Channels-last image batch dimensions: frames, height, width, channels.
#[derive(Clone, Copy, Debug)]
pub struct Nhwc {
    pub f: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Nhwc {
    pub fn at(&self, f: usize, y: usize, x: usize, c: usize) -> usize {
        ((f * self.h + y) * self.w + x) * self.c + c
    }
    pub fn len(&self) -> usize {
        self.f * self.h * self.w * self.c
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// PyTorch `Conv2d` (zero padding `pad`, `stride`, no bias) of channels-last images with a weight
/// [c_out][c_in][k][k]. Returns the output and its dimensions.
pub fn conv2d_nhwc(x: &[f32], d: Nhwc, wt: &[f32], c_out: usize, k: usize, stride: usize, pad: usize) -> (Vec<f64>, Nhwc) {
    let o = Nhwc { f: d.f, h: (d.h + 2 * pad - k) / stride + 1, w: (d.w + 2 * pad - k) / stride + 1, c: c_out };
    let mut y = vec![0f64; o.len()];
    for f in 0..d.f {
        for oy in 0..o.h {
            for ox in 0..o.w {
                for co in 0..c_out {
                    let mut s = 0f64;
                    for ci in 0..d.c {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * stride + ky) as isize - pad as isize;
                                let ix = (ox * stride + kx) as isize - pad as isize;
                                if iy < 0 || ix < 0 || iy >= d.h as isize || ix >= d.w as isize {
                                    continue;
                                }
                                let xv = x[d.at(f, iy as usize, ix as usize, ci)] as f64;
                                s += xv * wt[((co * d.c + ci) * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                    y[o.at(f, oy, ox, co)] = s;
                }
            }
        }
    }
    (y, o)
}

/// PyTorch `ConvTranspose2d` (no padding, no bias) with stride `s` of channels-last images, weight
/// [c_in][c_out][k][k]: every input pixel scatters its k x k patch to (iy*s + ky, ix*s + kx).
pub fn conv_transpose_nhwc(x: &[f32], d: Nhwc, wt: &[f32], c_out: usize, k: usize, s: usize) -> (Vec<f64>, Nhwc) {
    let o = Nhwc { f: d.f, h: (d.h - 1) * s + k, w: (d.w - 1) * s + k, c: c_out };
    let mut y = vec![0f64; o.len()];
    for f in 0..d.f {
        for iy in 0..d.h {
            for ix in 0..d.w {
                for ci in 0..d.c {
                    let xv = x[d.at(f, iy, ix, ci)] as f64;
                    for co in 0..c_out {
                        for ky in 0..k {
                            for kx in 0..k {
                                y[o.at(f, iy * s + ky, ix * s + kx, co)] += xv * wt[((ci * c_out + co) * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    (y, o)
}

/// PyTorch `F.interpolate(mode="bilinear", align_corners=True)` of channels-last images.
pub fn bilinear_nhwc(x: &[f64], d: Nhwc, h_out: usize, w_out: usize) -> (Vec<f64>, Nhwc) {
    let o = Nhwc { f: d.f, h: h_out, w: w_out, c: d.c };
    // Source coordinate of output index i and its two neighbours with weights.
    let taps = |n_in: usize, n_out: usize, i: usize| -> (usize, usize, f64) {
        let src = if n_out > 1 { i as f64 * (n_in - 1) as f64 / (n_out - 1) as f64 } else { 0.0 };
        let i0 = (src.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        (i0, i1, src - i0 as f64)
    };
    let mut y = vec![0f64; o.len()];
    for f in 0..d.f {
        for oy in 0..h_out {
            let (y0, y1, ly) = taps(d.h, h_out, oy);
            for ox in 0..w_out {
                let (x0, x1, lx) = taps(d.w, w_out, ox);
                for c in 0..d.c {
                    let v = |yy: usize, xx: usize| x[d.at(f, yy, xx, c)];
                    y[o.at(f, oy, ox, c)] = (1.0 - ly) * ((1.0 - lx) * v(y0, x0) + lx * v(y0, x1)) + ly * ((1.0 - lx) * v(y1, x0) + lx * v(y1, x1));
                }
            }
        }
    }
    (y, o)
}

/// sign(y) * (exp(|y|) - 1), VGGT's inverse log transform.
pub fn inverse_log(y: f64) -> f64 {
    if y == 0.0 {
        0.0
    } else {
        y.signum() * y.abs().exp_m1()
    }
}
