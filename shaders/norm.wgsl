// RMSNorm and LayerNorm over rows of `dim` elements, one workgroup per row, f32 statistics.
// Rows may sit inside a wider token (per-head q/k norm of a fused QKV): row r is head
// r % heads of token r / heads, starting at token * token_stride + off + head * dim.
// The output has the input's layout (INPLACE writes back into X).

// Declared by the contract (src/kernels/norm.rs): Params P; X (read_write with INPLACE), G (WEIGHT),
// B (BIAS), Y (unless INPLACE).

const WG: u32 = NORM_WG_X;

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

@compute @workgroup_size(NORM_WG_X, NORM_WG_Y, NORM_WG_Z)
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
