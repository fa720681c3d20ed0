// Convolutions of channels-last images: an image tensor is [frames, H, W, C] row-major, so the C
// channels of a pixel are contiguous (a 1x1 convolution is a plain matmul over pixels).
// Both kernels are implicit GEMMs (no im2col buffer): 64 output pixels x 64 output columns per
// workgroup, 16x16 threads of 4x4 outputs, K in steps of 16, f32 accumulation; the weights stay
// packed (f32 / f16 / q8 / q4, shaders/quant.wgsl) and are dequantised as they are loaded.
// Workgroups: (column tiles, pixel tiles, frames).
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
// Epilogue, in this order: + B[co] (BIAS), max(., 0) (RELU), + a separable positional table (POS:
// channel co < C/2 reads POS[ox * C/2 + co], else POS[(w_out + oy) * C/2 + co - C/2]),
// + max(RES, 0) (RES), + ADD. RELU_IN applies max(., 0) to X as it is read.

struct Params {
    h_in: u32,
    w_in: u32,
    c_in: u32,
    k: u32,
    h_out: u32,
    w_out: u32,
    c_out: u32,
    stride: u32,
    pad: u32,
    kp: u32,
    soff: u32,
    x_fstride: u32,
    x_off: u32,
    M: u32,
    N: u32,
    K: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<Act>;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read_write> Y: array<Act>;
#ifdef BIAS
@group(0) @binding(4) var<storage, read> B: array<f32>;
#endif
#ifdef POS
@group(0) @binding(5) var<storage, read> POS: array<f32>;
#endif
#ifdef RES
@group(0) @binding(6) var<storage, read> REST: array<Act>;
#endif
#ifdef ADD
@group(0) @binding(7) var<storage, read> ADDT: array<Act>;
#endif

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Bs: array<f32, 1024>; // [BK][BN]

fn x_load(i: u32) -> f32 {
    let v = f32(X[i]);
#ifdef RELU_IN
    return max(v, 0.0);
#else
    return v;
#endif
}

// Write GEMM output (pixel m of frame f, column n) through the epilogue.
fn store(f: u32, m: u32, n: u32, acc: f32) {
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
    v += B[co];
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

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let f = wid.z;
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    let xbase = P.x_off + f * P.x_fstride;
    // This thread loads 4 consecutive k of tile row `ar` (pixel m0 + ar; for CONV also output
    // channel n0 + ar of the weight tile).
    let ar = tid / 4u;
    let ak = (tid % 4u) * 4u;
    let am = m0 + ar;
#ifdef CONV
    let iy0 = i32((am / P.w_out) * P.stride) - i32(P.pad);
    let ix0 = i32((am % P.w_out) * P.stride) - i32(P.pad);
    let kk = P.k * P.k;
    let bn = n0 + ar;
    // (ky, kx, ci) of k = k0 + ak, carried along with k0 so that the loop needs no division.
    var ci0 = ak;
    var kx0 = 0u;
    var ky0 = 0u;
    while (ci0 >= P.c_in) {
        ci0 -= P.c_in;
        kx0 += 1u;
        if (kx0 == P.k) {
            kx0 = 0u;
            ky0 += 1u;
        }
    }
#else
    let bk = tid / 16u;
    let bc = (tid % 16u) * 4u;
#endif
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < P.K; k0 += BK) {
        for (var j = 0u; j < 4u; j++) {
            let k = k0 + ak + j;
            var a = 0.0;
#ifdef CONV
            var b = 0.0;
            var ci = ci0 + j;
            var kx = kx0;
            var ky = ky0;
            while (ci >= P.c_in) {
                ci -= P.c_in;
                kx += 1u;
                if (kx == P.k) {
                    kx = 0u;
                    ky += 1u;
                }
            }
            if (k < P.K) {
                let iy = iy0 + i32(ky);
                let ix = ix0 + i32(kx);
                if (am < P.M && iy >= 0 && iy < i32(P.h_in) && ix >= 0 && ix < i32(P.w_in)) {
                    a = x_load(xbase + (u32(iy) * P.w_in + u32(ix)) * P.c_in + ci);
                }
                if (bn < P.N) {
                    b = load_w1(bn, ci * kk + ky * P.k + kx, P.kp, P.soff);
                }
            }
            Bs[(ak + j) * BN + ar] = b;
#else
            if (am < P.M && k < P.K) {
                a = x_load(xbase + am * P.c_in + k);
            }
#endif
            As[(ak + j) * BM + ar] = a;
        }
#ifdef CONVT
        // Weight row k0 + bk, 4 consecutive columns (rows are zero-padded to kp >= N).
        var wv = vec4<f32>(0.0);
        if (k0 + bk < P.K && n0 + bc < P.N) {
            wv = load_w4(k0 + bk, n0 + bc, P.kp, P.soff);
        }
        let wb = bk * BN + bc;
        Bs[wb] = wv.x;
        Bs[wb + 1u] = wv.y;
        Bs[wb + 2u] = wv.z;
        Bs[wb + 3u] = wv.w;
#endif
        workgroupBarrier();
        for (var kq = 0u; kq < BK; kq++) {
            let ab = kq * BM + lid.y * 4u;
            let bb = kq * BN + lid.x * 4u;
            let b = vec4<f32>(Bs[bb], Bs[bb + 1u], Bs[bb + 2u], Bs[bb + 3u]);
            acc[0] += As[ab] * b;
            acc[1] += As[ab + 1u] * b;
            acc[2] += As[ab + 2u] * b;
            acc[3] += As[ab + 3u] * b;
        }
        workgroupBarrier();
#ifdef CONV
        ci0 += BK;
        while (ci0 >= P.c_in) {
            ci0 -= P.c_in;
            kx0 += 1u;
            if (kx0 == P.k) {
                kx0 = 0u;
                ky0 += 1u;
            }
        }
#endif
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + lid.x * 4u + j;
            if (m < P.M && n < P.N) {
                store(f, m, n, acc[i][j]);
            }
        }
    }
}
