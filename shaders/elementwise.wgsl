// Element-wise operations on activations, one flag per op:
// ADD a+b, MUL a*b, SILU silu(a), GELU gelu(a) (exact erf), SILU_MUL silu(a)*b,
// SCALE a*g[col] (LayerScale), SCALE_ADD a + b*g[col] (LayerScale on a residual branch).

struct Params {
    n: u32,
    cols: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<Act>;
#ifdef ADD|MUL|SILU_MUL|SCALE_ADD
@group(0) @binding(2) var<storage, read> B: array<Act>;
#endif
#ifdef SCALE|SCALE_ADD
@group(0) @binding(3) var<storage, read> G: array<f32>;
#endif
@group(0) @binding(4) var<storage, read_write> Y: array<Act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
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
    Y[i] = Act(y);
}
