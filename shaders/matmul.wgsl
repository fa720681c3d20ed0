// Y[M, N] = X[M, K] · W[N, K]^T with W packed (f16 / q8 / q4) and dequantised in the kernel,
// f32 accumulation, and a fused epilogue: + bias, then GELU or SiLU, then * MUL, then + ADD.
// `gemm`: the shared tiled GEMM core (shaders/gemm_core.wgsl; tiling chosen per adapter) with
// this family's loads and store below.
// `gemv`: one row of X (decode); GEMV_WG_Y (8) output rows per workgroup, GEMV_WG_X (32) lanes
// split K, tree reduction; for q4 weights (X4) each lane takes whole blocks and reads X four
// values at a time.

// Declared by the contract (src/kernels/matmul.rs): Params P (M, N, K, kp, soff); X (as ActX),
// W, Y, B (BIAS), MULT (MUL), ADDT (ADD); the workgroup sizes (GEMV_WG_*, GEMM_WG_* from the tiling).

// X is read as vec4s with X4.
#ifdef X4
alias ActX = Act4;
#else
alias ActX = Act;
#endif

fn epilogue(m: u32, n: u32, acc: f32) -> Act {
    var v = acc;
#ifdef BIAS
    v += B[n];
#endif
#ifdef GELU
    v = gelu_f32(v);
#endif
#ifdef SILU
    v = silu_f32(v);
#endif
#ifdef MUL
    v *= f32(MULT[m * P.N + n]);
#endif
#ifdef ADD
    v += f32(ADDT[m * P.N + n]);
#endif
    return Act(v);
}

#ifdef X4
// Columns 4i..4i+3 of row m (K is a multiple of 4); zero past K, where the padded weights are.
fn x4(m: u32, i: u32) -> vec4<f32> {
    if (4u * i < P.K) {
        return vec4<f32>(X[m * (P.K / 4u) + i]);
    }
    return vec4<f32>(0.0);
}
#else
fn x_at(m: u32, k: u32) -> f32 {
    if (m < P.M && k < P.K) {
        return f32(X[m * P.K + k]);
    }
    return 0.0;
}
#endif

#ifdef GEMM
// Hooks of the shared GEMM core (shaders/gemm_core.wgsl): A = X (read as vec4s with X4, when K
// is a multiple of 4), B = Wᵀ dequantised four weights at a time along a row, the epilogue.
alias GemmRow = u32;
alias GemmK = u32;

fn gemm_row(z: u32, m: u32) -> u32 {
    return m;
}

fn gemm_k_at(k: u32) -> u32 {
    return k;
}

fn gemm_k_next(c: u32) -> u32 {
    return c;
}

fn gemm_a4(m: u32, k: u32, c: u32) -> vec4<f32> {
#ifdef X4
    if (m < P.M && k < P.K) {
        return vec4<f32>(X[m * (P.K / 4u) + k / 4u]);
    }
    return vec4<f32>(0.0);
#else
    return vec4<f32>(x_at(m, k), x_at(m, k + 1u), x_at(m, k + 2u), x_at(m, k + 3u));
#endif
}

// Rows are zero-padded to KP (a multiple of 32) columns, so k past K reads zeros.
fn gemm_b4(n: u32, k: u32, c: u32) -> vec4<f32> {
    if (n < P.N) {
        return load_w4(n, k, P.kp, P.soff);
    }
    return vec4<f32>(0.0);
}

fn gemm_store(z: u32, m: u32, n: u32, acc: f32) {
    Y[m * P.N + n] = epilogue(m, n, acc);
}
#endif

#ifdef GEMV
var<workgroup> red: array<f32, GEMV_WG_X * GEMV_WG_Y>;

@compute @workgroup_size(GEMV_WG_X, GEMV_WG_Y, GEMV_WG_Z)
fn gemv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = flat_wg(wid, nwg) * GEMV_WG_Y + lid.y;
    let m = wid.z;
    var sum = 0.0;
#ifdef X4
    // q4 with K a multiple of 4: each lane takes whole blocks (32 weights: four words and one
    // scale) and reads X as vec4s, a quarter of the loads of the general loop below.
    let nb = P.kp / 32u;
    if (n < P.N) {
        for (var b = lid.x; b < nb; b += GEMV_WG_X) {
            let blk = n * nb + b;
            var part = 0.0;
            for (var w = 0u; w < 4u; w++) {
                let word = vec4<u32>(W[blk * 4u + w]);
                let lo = vec4<f32>((word >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)) - 8.0;
                let hi = vec4<f32>((word >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u)) - 8.0;
                let i = b * 8u + w * 2u;
                part += dot(lo, x4(m, i)) + dot(hi, x4(m, i + 1u));
            }
            sum += w_scale(blk, P.soff) * part;
        }
    }
#else
    if (n < P.N) {
        for (var k = lid.x * 8u; k < P.K; k += 8u * GEMV_WG_X) {
            let w0 = load_w4(n, k, P.kp, P.soff);
            let w1 = load_w4(n, k + 4u, P.kp, P.soff);
            let x0 = vec4<f32>(x_at(m, k), x_at(m, k + 1u), x_at(m, k + 2u), x_at(m, k + 3u));
            let x1 = vec4<f32>(x_at(m, k + 4u), x_at(m, k + 5u), x_at(m, k + 6u), x_at(m, k + 7u));
            sum += dot(w0, x0) + dot(w1, x1);
        }
    }
#endif
    let r = lid.y * GEMV_WG_X;
    red[r + lid.x] = sum;
    workgroupBarrier();
    for (var s = GEMV_WG_X / 2u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            red[r + lid.x] += red[r + lid.x + s];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u && n < P.N) {
        Y[m * P.N + n] = epilogue(m, n, red[r]);
    }
}
#endif
