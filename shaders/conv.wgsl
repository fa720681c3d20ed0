// Convolutions of channels-last images: an image tensor is [frames, H, W, C] row-major, so the C
// channels of a pixel are contiguous (a 1x1 convolution is a plain matmul over pixels).
// Both kernels are implicit GEMMs (no im2col buffer) on the shared GEMM core
// (shaders/gemm_core.wgsl: tiling chosen per adapter, f32 accumulation), with this family's loads
// (the im2col gather) and store below; the weights stay packed (f32 / f16 / q8 / q4,
// shaders/quant.wgsl) and are dequantised as they are loaded. Workgroups: (column tiles, pixel
// tiles, frames).
//
// CONV: Y[f, oy, ox, co] = sum over (ky, kx, ci) of
//         X[f, oy*stride + ky - pad, ox*stride + kx - pad, ci] * W[co, (ci*k + ky)*k + kx]
//   (zero outside the image). W is the package's [out, in*k*k] matrix of a PyTorch [out, in, k, k]
//   weight. K runs over (ky, kx, ci) with ci fastest, so that a K step reads consecutive channels
//   of one pixel; the weight is gathered across its row to match. X may be a strided view: frame f
//   starts at x_off + f * x_fstride (for example the patch tokens after a frame's special tokens).
// CONVT: transposed convolution with kernel == stride == k (no overlap), so output pixel
//   (y*k + dy, x*k + dx) takes input pixel (y, x) only:
//   Y[f, y*k+dy, x*k+dx, co] = sum over ci of X[f, y, x, ci] * W[ci, (co*k + dy)*k + dx]
//   (W is the [in, out*k*k] matrix of a PyTorch ConvTranspose2d [in, out, k, k] weight): a GEMM
//   over input pixels x (co, dy, dx) whose outputs are scattered.
// Epilogue, in this order: + BIASES[co] (BIAS), max(., 0) (RELU), + a separable positional table (POS:
// channel co < C/2 reads POS[ox * C/2 + co], else POS[(w_out + oy) * C/2 + co - C/2]),
// + max(RES, 0) (RES), + ADD. RELU_IN applies max(., 0) to X as it is read.

// Declared by the contract (src/kernels/conv.rs): Params P; X, W, Y, BIASES (BIAS), POS (POS),
// REST (RES), ADDT (ADD); the workgroup size GEMM_WG_* (from the tiling).

fn x_load(i: u32) -> f32 {
    let v = f32(X[i]);
#ifdef RELU_IN
    return max(v, 0.0);
#else
    return v;
#endif
}

#ifdef CONV
// The input channel ci of kernel tap (ky, kx): position k = (ky * k + kx) * c_in + ci along K.
struct Tap {
    ci: u32,
    kx: u32,
    ky: u32,
}

// The tap d positions further along K: the one place that decomposes k (by carrying, without a
// division).
fn tap_add(t: Tap, d: u32) -> Tap {
    var r = t;
    r.ci += d;
    while (r.ci >= P.c_in) {
        r.ci -= P.c_in;
        r.kx += 1u;
        if (r.kx == P.k) {
            r.kx = 0u;
            r.ky += 1u;
        }
    }
    return r;
}

// The GEMM core's K cursor: the taps of this thread's k, k + 1, k + 2, k + 3 (one lane each).
struct GemmK {
    ci: vec4<u32>,
    kx: vec4<u32>,
    ky: vec4<u32>,
}

fn gemm_taps(base: Tap) -> GemmK {
    let t1 = tap_add(base, 1u);
    let t2 = tap_add(base, 2u);
    let t3 = tap_add(base, 3u);
    return GemmK(vec4<u32>(base.ci, t1.ci, t2.ci, t3.ci), vec4<u32>(base.kx, t1.kx, t2.kx, t3.kx), vec4<u32>(base.ky, t1.ky, t2.ky, t3.ky));
}

fn gemm_k_at(k: u32) -> GemmK {
    return gemm_taps(tap_add(Tap(0u, 0u, 0u), k));
}

fn gemm_k_next(c: GemmK) -> GemmK {
    return gemm_taps(tap_add(Tap(c.ci.x, c.kx.x, c.ky.x), GEMM_BK));
}

// Output pixel m of frame z: where its frame starts and the input pixel under tap (0, 0).
struct GemmRow {
    x: u32,
    iy: i32,
    ix: i32,
    live: bool,
}

fn gemm_row(z: u32, m: u32) -> GemmRow {
    let iy = i32((m / P.w_out) * P.stride) - i32(P.pad);
    let ix = i32((m % P.w_out) * P.stride) - i32(P.pad);
    return GemmRow(P.x_off + z * P.x_fstride, iy, ix, m < P.M);
}

// The implicit im2col row: input pixels under the four taps (zero outside the image).
fn gemm_a4(r: GemmRow, k: u32, c: GemmK) -> vec4<f32> {
    var a = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let iy = r.iy + i32(c.ky[j]);
        let ix = r.ix + i32(c.kx[j]);
        if (k + j < P.K && r.live && iy >= 0 && iy < i32(P.h_in) && ix >= 0 && ix < i32(P.w_in)) {
            a[j] = x_load(r.x + (u32(iy) * P.w_in + u32(ix)) * P.c_in + c.ci[j]);
        }
    }
    return a;
}

// Weight row n (output channel) gathered at the four taps: column (ci * k + ky) * k + kx.
fn gemm_b4(n: u32, k: u32, c: GemmK) -> vec4<f32> {
    var b = vec4<f32>(0.0);
    if (n < P.N) {
        let kk = P.k * P.k;
        for (var j = 0u; j < 4u; j++) {
            if (k + j < P.K) {
                b[j] = load_w1(n, c.ci[j] * kk + c.ky[j] * P.k + c.kx[j], P.kp, P.soff);
            }
        }
    }
    return b;
}
#endif

#ifdef CONVT
alias GemmK = u32;

fn gemm_k_at(k: u32) -> u32 {
    return k;
}

fn gemm_k_next(c: u32) -> u32 {
    return c;
}

// Input pixel m of frame z: where its channels start.
struct GemmRow {
    x: u32,
    live: bool,
}

fn gemm_row(z: u32, m: u32) -> GemmRow {
    return GemmRow(P.x_off + z * P.x_fstride + m * P.c_in, m < P.M);
}

fn gemm_a4(r: GemmRow, k: u32, c: u32) -> vec4<f32> {
    var a = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        if (r.live && k + j < P.K) {
            a[j] = x_load(r.x + k + j);
        }
    }
    return a;
}

// Weight row k, 4 consecutive columns (rows are zero-padded to kp >= N).
fn gemm_b4n(k: u32, n: u32) -> vec4<f32> {
    if (k < P.K && n < P.N) {
        return load_w4(k, n, P.kp, P.soff);
    }
    return vec4<f32>(0.0);
}
#endif

// Write GEMM output (pixel m of frame f, column n) through the epilogue.
fn gemm_store(f: u32, m: u32, n: u32, acc: f32) {
#ifdef CONVT
    let kk = P.k * P.k;
    let co = n / kk;
    let t = n - co * kk;
    let dy = t / P.k;
    let oy = (m / P.w_in) * P.k + dy;
    let ox = (m % P.w_in) * P.k + t - dy * P.k;
#else
    let co = n;
    let oy = m / P.w_out;
    let ox = m % P.w_out;
#endif
    let idx = ((f * P.h_out + oy) * P.w_out + ox) * P.c_out + co;
    var v = acc;
#ifdef BIAS
    v += BIASES[co];
#endif
#ifdef RELU
    v = max(v, 0.0);
#endif
#ifdef POS
    let hc = P.c_out / 2u;
    if (co < hc) {
        v += POS[ox * hc + co];
    } else {
        v += POS[(P.w_out + oy) * hc + co - hc];
    }
#endif
#ifdef RES
    v += max(f32(REST[idx]), 0.0);
#endif
#ifdef ADD
    v += f32(ADDT[idx]);
#endif
    Y[idx] = Act(v);
}

