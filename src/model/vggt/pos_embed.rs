//! DINOv2's positional embedding resampled from its trained M x M grid to a frame's patch grid, as
//! PyTorch's `F.interpolate(mode="bicubic", antialias=True, size=(h, w))` computes it (separable
//! filters; the antialiased bicubic uses a = -0.5 and widens its support when downsampling).
//! Computed once per grid on the CPU in f64.

/// The antialiased bicubic kernel of PyTorch's `_upsample_bicubic2d_aa` (a = -0.5).
fn bicubic_aa(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Interpolation weights [output][input] of one dimension (align_corners = False).
pub fn aa_weights(input: usize, output: usize) -> Vec<Vec<f64>> {
    let scale = input as f64 / output as f64;
    let support = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
    let inv = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..output)
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            // PyTorch truncates toward zero, then clamps.
            let lo = ((center - support + 0.5).trunc() as i64).max(0) as usize;
            let hi = ((center + support + 0.5).trunc() as i64).min(input as i64) as usize;
            let mut w = vec![0.0; input];
            for (j, wj) in w.iter_mut().enumerate().take(hi).skip(lo) {
                *wj = bicubic_aa((j as f64 - center + 0.5) * inv);
            }
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            w
        })
        .collect()
}

/// `table` is [M * M, dim] (patch rows of the trained grid, row-major); returns [h * w, dim].
pub fn resample(table: &[f32], m: usize, dim: usize, h: usize, w: usize) -> Vec<f32> {
    if h == m && w == m {
        return table.to_vec(); // upstream returns the table as is
    }
    let (wy, wx) = (aa_weights(m, h), aa_weights(m, w));
    // Width first, then height (the order PyTorch's separable kernel uses).
    let mut rows = vec![0f64; m * w * dim];
    for i in 0..m {
        for (x, wxx) in wx.iter().enumerate() {
            let out = &mut rows[(i * w + x) * dim..(i * w + x + 1) * dim];
            for (j, &c) in wxx.iter().enumerate().filter(|(_, c)| **c != 0.0) {
                for (o, &v) in out.iter_mut().zip(&table[(i * m + j) * dim..(i * m + j + 1) * dim]) {
                    *o += c * v as f64;
                }
            }
        }
    }
    let mut out = vec![0f32; h * w * dim];
    for (y, wyy) in wy.iter().enumerate() {
        for x in 0..w {
            for d in 0..dim {
                let v: f64 = wyy.iter().enumerate().filter(|(_, c)| **c != 0.0).map(|(i, &c)| c * rows[(i * w + x) * dim + d]).sum();
                out[(y * w + x) * dim + d] = v as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_normalised_and_identity_at_scale_one() {
        for (i, o) in [(37, 46), (37, 28), (4, 3), (5, 5)] {
            for row in aa_weights(i, o) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
        let w = aa_weights(5, 5);
        for (i, row) in w.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    /// Downsampling 4 -> 2 by an exact factor of 2: the kernel stretched to support 4 around
    /// centres 1.0 and 3.0; hand-computed weights of x = |j + 0.5 - c| / 2.
    #[test]
    fn downsampling_widens_the_kernel() {
        let w = aa_weights(4, 2);
        // centre 1.0: j = 0..3 at distances 0.25, 0.25, 0.75, 1.25 (in output units).
        let raw: Vec<f64> = [0.25, 0.25, 0.75, 1.25].iter().map(|&x| bicubic_aa(x)).collect();
        let t: f64 = raw.iter().sum();
        for j in 0..4 {
            assert!((w[0][j] - raw[j] / t).abs() < 1e-12, "{:?}", w[0]);
        }
    }
}
