// RMSNorm and LayerNorm over rows of `dim` elements, one workgroup per row, f32 statistics.
// Rows may sit inside a wider token (per-head q/k norm of a fused QKV): row r is head
// r % heads of token r / heads, starting at token * token_stride + off + head * dim.
// The output has the input's layout (INPLACE writes back into X).

struct Params {
    dim: u32,
    n_rows: u32,
    heads: u32,
    token_stride: u32,
    off: u32,
    eps: f32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
#ifdef INPLACE
@group(0) @binding(1) var<storage, read_write> X: array<Act>;
#else
@group(0) @binding(1) var<storage, read> X: array<Act>;
@group(0) @binding(4) var<storage, read_write> Y: array<Act>;
#endif
#ifdef WEIGHT
@group(0) @binding(2) var<storage, read> G: array<f32>;
#endif
#ifdef BIAS
@group(0) @binding(3) var<storage, read> B: array<f32>;
#endif

const WG: u32 = 128u;

fn store(i: u32, v: f32) {
#ifdef INPLACE
    X[i] = Act(v);
#else
    Y[i] = Act(v);
#endif
}

fn affine(d: u32, v: f32) -> f32 {
    var r = v;
#ifdef WEIGHT
    r *= G[d];
#endif
#ifdef BIAS
    r += B[d];
#endif
    return r;
}

@compute @workgroup_size(128)
fn norm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_wg(wid, nwg);
    if (row >= P.n_rows) {
        return;
    }
    let t = lid.x;
    let base = (row / P.heads) * P.token_stride + P.off + (row % P.heads) * P.dim;
    let n = f32(P.dim);
#ifdef RMS
    var ss = 0.0;
    for (var d = t; d < P.dim; d += WG) {
        let x = f32(X[base + d]);
        ss += x * x;
    }
    let inv = inverseSqrt(wg_sum(t, ss) / n + P.eps);
    for (var d = t; d < P.dim; d += WG) {
        store(base + d, affine(d, f32(X[base + d]) * inv));
    }
#else
    var s = 0.0;
    for (var d = t; d < P.dim; d += WG) {
        s += f32(X[base + d]);
    }
    let mean = wg_sum(t, s) / n;
    var v = 0.0;
    for (var d = t; d < P.dim; d += WG) {
        let x = f32(X[base + d]) - mean;
        v += x * x;
    }
    let inv = inverseSqrt(wg_sum(t, v) / n + P.eps);
    for (var d = t; d < P.dim; d += WG) {
        store(base + d, affine(d, (f32(X[base + d]) - mean) * inv));
    }
#endif
}
