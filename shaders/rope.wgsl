// Rotary position embedding, in place, for all four variants of the model:
// the head is split into `n_parts` parts (1, or 2 for VGGT's y/x halves); within a part of
// 2*half dims, dim k pairs with k + half (rotate_half). The angle of pair k is
// pos[token][c] * FREQ[k], where c is the part index when there are two parts, else the section
// of k (k < sec0: 0, k < sec1: 1, else 2: M-RoPE's t/h/w and the Qwen ViT's h/w).
// FREQ holds f32 inverse frequencies computed on the CPU as the reference does.

// Declared by the contract (src/kernels/rope.rs): Params P; X (in place), POS, FREQ.

// sincos: shaders/sincos.wgsl.

@compute @workgroup_size(ROPE_WG_X, ROPE_WG_Y, ROPE_WG_Z)
fn rope(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * ROPE_WG_X;
    let pairs = P.n_parts * P.half;
    if (idx >= P.n_tok * P.n_heads * pairs) {
        return;
    }
    let pp = idx % pairs;
    let head = (idx / pairs) % P.n_heads;
    let tok = idx / (pairs * P.n_heads);
    let part = pp / P.half;
    let k = pp % P.half;
    var c = part;
    if (P.n_parts == 1u) {
        c = select(select(2u, 1u, k < P.sec1), 0u, k < P.sec0);
    }
    let angle = f32(POS[tok * P.n_comp + c]) * FREQ[k];
    let sc = sincos(angle);
    let a = tok * P.token_stride + P.off + head * P.head_dim + part * 2u * P.half + k;
    let b = a + P.half;
    let xa = f32(X[a]);
    let xb = f32(X[b]);
    X[a] = Act(xa * sc.y - xb * sc.x);
    X[b] = Act(xb * sc.y + xa * sc.x);
}
