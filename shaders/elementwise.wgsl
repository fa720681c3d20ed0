// Element-wise operations on activations, one flag per op:
// ADD a+b, MUL a*b, SILU silu(a), GELU gelu(a) (exact erf), SILU_MUL silu(a)*b,
// SCALE a*g[col] (LayerScale), SCALE_ADD a + b*g[col] (LayerScale on a residual branch),
// RELU max(a, 0) on the columns lo..hi of each row (a copy elsewhere),
// MODULATE r + gate * (a * (1 + scale) + shift) (adaLN-style modulation with a gated residual),
// where row t of B holds [shift | scale | gate], each `cols` wide.

// Declared by the contract (src/kernels/elementwise.rs): Params P; A, B (ops with a second
// operand), G (SCALE, SCALE_ADD), Y, R (MODULATE).

@compute @workgroup_size(MAIN_WG_X, MAIN_WG_Y, MAIN_WG_Z)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * MAIN_WG_X;
    if (i >= P.n) {
        return;
    }
    let a = f32(A[i]);
    var y = a;
#ifdef ADD
    y = a + f32(B[i]);
#endif
#ifdef MUL
    y = a * f32(B[i]);
#endif
#ifdef SILU
    y = silu_f32(a);
#endif
#ifdef GELU
    y = gelu_f32(a);
#endif
#ifdef SILU_MUL
    y = silu_f32(a) * f32(B[i]);
#endif
#ifdef SCALE
    y = a * G[i % P.cols];
#endif
#ifdef SCALE_ADD
    y = a + f32(B[i]) * G[i % P.cols];
#endif
#ifdef RELU
    let c = i % P.cols;
    y = select(a, max(a, 0.0), c >= P.lo && c < P.hi);
#endif
#ifdef MODULATE
    let b = (i / P.cols) * 3u * P.cols + i % P.cols;
    let shift = f32(B[b]);
    let scale = f32(B[b + P.cols]);
    let gate = f32(B[b + 2u * P.cols]);
    y = f32(R[i]) + gate * (a * (1.0 + scale) + shift);
#endif
    Y[i] = Act(y);
}
