// Y[M, N] = X[M, K] · W[N, K]^T with W packed (f16 / q8 / q4) and dequantised in the kernel,
// f32 accumulation, and a fused epilogue: + bias, then GELU or SiLU, then * MUL, then + ADD.
// `gemm`: the shared tiled GEMM core (shaders/gemm_core.wgsl; tiling chosen per adapter) with
// this family's loads and store below.
// `gemv`: one row of X (decode); GEMV_WG_Y (8) output rows per workgroup, GEMV_WG_X (32) lanes
// split K, tree reduction; for q4 and q8 weights (X4) each lane takes whole blocks and reads X
// four values at a time.
// The fused decode GEMVs (one row of X per workgroup z, as `gemv`):
//   NORM_IN: X is RMSNormed (G, eps) in a prologue; COMBINE: X is the attention's output, merged
//     from its key ranges (PART, ML) in a prologue. Either is staged in workgroup memory, rounded
//     to the activation type as the separate kernels store it, so results are bit-identical.
//   PAIRED: a workgroup's first GEMV_WG_Y / 2 rows are j.., its others j + half.. within blocks of
//     2 * half rows, so that rotate-half pairs (RoPE) and gate/up pairs meet in one workgroup.
//   W_MULTI: rows [0, n1) from W, [n1, n2) from W2, the rest from W3 (q/k/v, gate/up).
//   ROPE_KV: RMSNorm, then rows q | k | v + bias; q and k rotated by M-RoPE; q to Y, k and v into
//     the layer's KV cache KVC (keys from 0, values from v_base) at row past + m. The norm's
//     weight, the bias and the inverse frequencies come in one vector AUX (at most 8 storage
//     buffers per stage in WebGPU).   SWIGLU: Y = SiLU(gate) * up.
//   FOLD (with ROPE_KV): the attention folded into the q/k/v pass. The first workgroups compute
//     k | v as ROPE_KV does; each later one takes a (query head, key range) of row m: it computes
//     that head's q rows itself, rotates them and attends over the range of the keys cached
//     before this step, leaving its partial result in FOLDED (no Y). FOLD_MERGE: the o
//     projection's prologue merges those ranges with this step's own keys (written by the FOLD
//     pass) into X. Not bit-identical to the separate kernels: this step's keys join last.

// Declared by the contract (src/kernels/matmul.rs): Params P (M, N, K, kp, soff); X (as ActX),
// W, Y, BIASES (BIAS), MULT (MUL), ADDT (ADD); the workgroup sizes (GEMV_WG_*, GEMM_WG_* from the
// tiling). FOLD: wg_sum / wg_max (shaders/reduce.wgsl over RED_N = GEMV_WG_X * GEMV_WG_Y) and its `red`.

// X is read as vec4s with X4.
#ifdef X4
alias ActX = Act4;
#else
alias ActX = Act;
#endif

fn epilogue(m: u32, n: u32, acc: f32) -> Act {
    var v = acc;
#ifdef BIAS
    v += BIASES[n];
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

#ifdef NORM_IN|COMBINE|ROPE_KV|FOLD_MERGE
// The fused decode GEMVs stage their one row of X in workgroup memory (see stage_row).
fn x4(m: u32, i: u32) -> vec4<f32> {
    let k = 4u * i;
    if (k < P.K) {
        return vec4<f32>(xs[k], xs[k + 1u], xs[k + 2u], xs[k + 3u]);
    }
    return vec4<f32>(0.0);
}

fn x_at(m: u32, k: u32) -> f32 {
    if (k < P.K) {
        return xs[k];
    }
    return 0.0;
}
#else
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
#ifndef REDUCE
var<workgroup> red: array<f32, GEMV_WG_X * GEMV_WG_Y>;
#endif

#ifdef NORM_IN|COMBINE|ROPE_KV|FOLD_MERGE
// Most columns a staged row may have (MAX_STAGED_K in decode.rs): with `red`, within the 16 KiB
// of workgroup memory every adapter has.
const STAGED_K: u32 = 3584u;
var<workgroup> xs: array<f32, STAGED_K>;
#endif

#ifdef NORM_IN|ROPE_KV
// Element k of row m of X, whichever way X is bound.
fn x_raw(m: u32, k: u32) -> f32 {
#ifdef X4
    return f32(X[m * (P.K / 4u) + k / 4u][k % 4u]);
#else
    return f32(X[m * P.K + k]);
#endif
}
#endif

#ifdef NORM_IN|ROPE_KV
// The RMSNorm's weight: G, or the head of AUX.
fn norm_weight(k: u32) -> f32 {
#ifdef ROPE_KV
    return AUX[k];
#else
    return G[k];
#endif
}

// RMSNorm of row m into `xs`, summed as the norm kernel sums (128 strided partial sums, then a
// tree) so that the result is the norm kernel's to the bit.
fn stage_row(m: u32, t: u32) {
    var ss = 0.0;
    if (t < 128u) {
        for (var k = t; k < P.K; k += 128u) {
            let v = x_raw(m, k);
            ss += v * v;
        }
    }
    red[t] = ss;
    workgroupBarrier();
    for (var s = 64u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let inv = inverseSqrt(red[0] / f32(P.K) + P.eps);
    for (var k = t; k < P.K; k += GEMV_WG_X * GEMV_WG_Y) {
        xs[k] = f32(Act(x_raw(m, k) * inv * norm_weight(k)));
    }
    workgroupBarrier();
}
#endif

#ifdef COMBINE
// Per head: the key ranges' common maximum and the sum of their weights (at most 64 heads).
var<workgroup> head_ml: array<vec2<f32>, 64>;

// Row m of the attention's output into `xs`: head h's key ranges (P.n_split of them, partial
// sums PART and (max, sum) pairs ML) rescaled to their common maximum and summed, as
// flash_combine does.
fn stage_row(m: u32, t: u32) {
    if (t < P.hq) {
        let base = (m * P.hq + t) * P.n_split;
        var mx = -3.0e38;
        for (var s = 0u; s < P.n_split; s++) {
            mx = max(mx, ML[base + s].x);
        }
        var l = 0.0;
        for (var s = 0u; s < P.n_split; s++) {
            let ml = ML[base + s];
            l += select(0.0, exp(ml.x - mx), ml.y > 0.0) * ml.y;
        }
        head_ml[t] = vec2<f32>(mx, l);
    }
    workgroupBarrier();
    for (var k = t; k < P.K; k += GEMV_WG_X * GEMV_WG_Y) {
        let h = k / P.hd;
        let base = (m * P.hq + h) * P.n_split;
        let hm = head_ml[h];
        var acc = 0.0;
        for (var s = 0u; s < P.n_split; s++) {
            let ml = ML[base + s];
            acc += select(0.0, exp(ml.x - hm.x), ml.y > 0.0) * PART[(base + s) * P.hd + k % P.hd];
        }
        xs[k] = f32(Act(select(0.0, acc / hm.y, hm.y > 0.0)));
    }
    workgroupBarrier();
}
#endif

#ifdef FOLD_MERGE
// Per head: the common maximum of its key ranges and this step's keys, and their summed weight.
var<workgroup> head_ml: array<vec2<f32>, 64>;
// This step's keys per head in `red` (at most GEMV_MAX_ROWS, so 64 heads fit).
const NEW_KEYS: u32 = 4u;

// A key range's (max, sum) in FOLDED (from ml_off, per (row, head, range)).
fn folded_ml(slot: u32) -> vec2<f32> {
    return vec2<f32>(FOLDED[P.ml_off + 2u * slot], FOLDED[P.ml_off + 2u * slot + 1u]);
}

// Row m of the attention's output into `xs`: head h's ranges of cached keys (partial sums in
// FOLDED from 0, per (row, head, range), hd each) and the keys of this step's rows 0..=m (rows
// past.. of the cache KVC, against the rotated q in FOLDED from q_off), each weighed against
// their common maximum as flash_combine does, summed and normalised.
fn stage_row(m: u32, t: u32) {
    let group = P.hq / (P.kv_dim / P.hd);
    if (t < P.hq) {
        let base = (m * P.hq + t) * P.n_split;
        let hk = t / group;
        let qb = P.q_off + m * P.q_dim + t * P.hd;
        var mx = -3.0e38;
        for (var s = 0u; s < P.n_split; s++) {
            mx = max(mx, folded_ml(base + s).x);
        }
        for (var j = 0u; j <= m; j++) {
            let kb = (P.past + j) * P.kv_dim + hk * P.hd;
            var dot = 0.0;
            for (var d = 0u; d < P.hd; d++) {
                dot += FOLDED[qb + d] * P.scale * f32(KVC[kb + d]);
            }
            red[t * NEW_KEYS + j] = dot;
            mx = max(mx, dot);
        }
        var l = 0.0;
        for (var s = 0u; s < P.n_split; s++) {
            let ml = folded_ml(base + s);
            l += select(0.0, exp(ml.x - mx), ml.y > 0.0) * ml.y;
        }
        for (var j = 0u; j <= m; j++) {
            let p = exp(red[t * NEW_KEYS + j] - mx);
            red[t * NEW_KEYS + j] = p;
            l += p;
        }
        head_ml[t] = vec2<f32>(mx, l);
    }
    workgroupBarrier();
    for (var k = t; k < P.K; k += GEMV_WG_X * GEMV_WG_Y) {
        let h = k / P.hd;
        let d = k % P.hd;
        let base = (m * P.hq + h) * P.n_split;
        let hm = head_ml[h];
        var acc = 0.0;
        for (var s = 0u; s < P.n_split; s++) {
            let ml = folded_ml(base + s);
            acc += select(0.0, exp(ml.x - hm.x), ml.y > 0.0) * FOLDED[(base + s) * P.hd + d];
        }
        let vb = P.v_base + (h / group) * P.hd + d;
        for (var j = 0u; j <= m; j++) {
            acc += red[h * NEW_KEYS + j] * f32(KVC[vb + (P.past + j) * P.kv_dim]);
        }
        xs[k] = f32(Act(acc / hm.y));
    }
    workgroupBarrier();
}
#endif

// The output row of local row y in workgroup g.
fn gemv_row(g: u32, y: u32) -> u32 {
#ifdef PAIRED
    let h2 = GEMV_WG_Y / 2u;
    let per_block = P.half / h2;
    let j = (g % per_block) * h2 + y % h2;
    return (g / per_block) * 2u * P.half + j + select(0u, P.half, y >= h2);
#else
    return g * GEMV_WG_Y + y;
#endif
}

// Output row n's row within its weight matrix and that matrix's scale offset (selecting it).
fn weight_row(n: u32) -> vec2<u32> {
#ifdef W_MULTI
    if (n >= P.n2) {
        w_sel = 2u;
        return vec2<u32>(n - P.n2, P.soff3);
    }
    if (n >= P.n1) {
        w_sel = 1u;
        return vec2<u32>(n - P.n1, P.soff2);
    }
#endif
    return vec2<u32>(n, P.soff);
}

#ifdef ROPE_KV
// Output row n (local row y) as the separate q / k / v GEMV stores it. AUX: norm weight [K],
// bias [N], inverse frequencies [half].
fn qkv_value(n: u32, y: u32) -> f32 {
    return f32(Act(red[y * GEMV_WG_X] + AUX[P.K + n]));
}

// Row n of q | k | v for token m: q and k rotated (M-RoPE, as the rope kernel does, with the
// pair's other half from the workgroup's other half), then stored to Y or the KV cache.
fn store_qkv(m: u32, n: u32, y: u32) {
    let h2 = GEMV_WG_Y / 2u;
    var v = qkv_value(n, y);
    if (n < P.q_dim + P.kv_dim) {
        let first = y < h2;
        let other = qkv_value(select(n - P.half, n + P.half, first), select(y - h2, y + h2, first));
        let k = n % P.half;
        let c = select(select(2u, 1u, k < P.sec1), 0u, k < P.sec0);
        let sc = sincos(f32(POS[m * P.n_comp + c]) * AUX[P.K + P.N + k]);
        let xa = select(other, v, first);
        let xb = select(v, other, first);
        v = select(xb * sc.y + xa * sc.x, xa * sc.y - xb * sc.x, first);
    }
#ifndef FOLD
    if (n < P.q_dim) {
        Y[m * P.q_dim + n] = Act(v);
        return;
    }
#endif
    if (n < P.q_dim + P.kv_dim) {
        KVC[(P.past + m) * P.kv_dim + n - P.q_dim] = Act(v);
    } else {
        KVC[P.v_base + (P.past + m) * P.kv_dim + n - P.q_dim - P.kv_dim] = Act(v);
    }
}
#endif

#ifdef X4
#ifdef W_Q4
// Block blk's 32 codes (four words of eight nibbles) · X's vec4s from i on, unscaled.
fn block_dot(m: u32, blk: u32, i: u32) -> f32 {
    let words = w_quad(blk);
    var part = 0.0;
    for (var w = 0u; w < 4u; w++) {
        let word = vec4<u32>(words[w]);
        let lo = vec4<f32>((word >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)) - 8.0;
        let hi = vec4<f32>((word >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u)) - 8.0;
        let j = i + w * 2u;
        part += dot(lo, x4(m, j)) + dot(hi, x4(m, j + 1u));
    }
    return part;
}
#endif
#ifdef W_Q8
// Block blk's 32 codes (eight words of four signed bytes) · X's vec4s from i on, unscaled.
fn block_dot(m: u32, blk: u32, i: u32) -> f32 {
    var part = 0.0;
    for (var h = 0u; h < 2u; h++) {
        let words = bitcast<vec4<i32>>(w_quad(2u * blk + h));
        for (var w = 0u; w < 4u; w++) {
            let word = vec4<i32>(words[w]);
            let q = (word << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
            part += dot(vec4<f32>(q), x4(m, i + 4u * h + w));
        }
    }
    return part;
}
#endif
#endif

// This lane's share of row n of W · row m of X (GEMV_WG_X lanes split K).
fn row_dot(m: u32, n: u32, lane: u32) -> f32 {
    let wrow = weight_row(n);
    let wr = wrow.x;
    let soff = wrow.y;
    var sum = 0.0;
#ifdef X4
    // q4 / q8 with K a multiple of 4: each lane takes whole blocks (32 weights: four or eight
    // code words, one scale) and reads X as vec4s, a quarter of the loads of the general loop.
    let nb = P.kp / 32u;
    if (n < P.N) {
        for (var b = lane; b < nb; b += GEMV_WG_X) {
            let blk = wr * nb + b;
            sum += w_scale(blk, soff) * block_dot(m, blk, b * 8u);
        }
    }
#else
    if (n < P.N) {
        for (var k = lane * 8u; k < P.K; k += 8u * GEMV_WG_X) {
            let w0 = load_w4(wr, k, P.kp, soff);
            let w1 = load_w4(wr, k + 4u, P.kp, soff);
            let x0 = vec4<f32>(x_at(m, k), x_at(m, k + 1u), x_at(m, k + 2u), x_at(m, k + 3u));
            let x1 = vec4<f32>(x_at(m, k + 4u), x_at(m, k + 5u), x_at(m, k + 6u), x_at(m, k + 7u));
            sum += dot(w0, x0) + dot(w1, x1);
        }
    }
#endif
    return sum;
}

// The lanes' shares summed by a tree into red[y * GEMV_WG_X] for each local row y.
fn lanes_reduce(lid: vec3<u32>, sum: f32) {
    let r = lid.y * GEMV_WG_X;
    red[r + lid.x] = sum;
    workgroupBarrier();
    for (var s = GEMV_WG_X / 2u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            red[r + lid.x] += red[r + lid.x + s];
        }
        workgroupBarrier();
    }
}

#ifdef FOLD
// Head h's q before the rotation (head_dim <= 128).
var<workgroup> qraw: array<f32, 128>;

// Workgroup `a` of the attention part: query head h = a / n_split, key range r of row m. Its q
// rows are computed as the q/k/v pass computes them (bias, rounding, M-RoPE); the range's
// partial result is flash_rows' with SPLIT, over the keys cached before this step.
fn fold_attention(m: u32, a: u32, lid: vec3<u32>) {
    let t = lid.y * GEMV_WG_X + lid.x;
    let h = a / P.n_split;
    let r = a % P.n_split;
    stage_row(m, t);
    for (var i = 0u; i < P.hd; i += GEMV_WG_Y) {
        let n = h * P.hd + i + lid.y;
        lanes_reduce(lid, row_dot(m, n, lid.x));
        if (lid.x == 0u) {
            qraw[i + lid.y] = qkv_value(n, lid.y);
        }
        workgroupBarrier();
    }
    // The staged row is spent: xs holds q * scale from 0 and the keys' weights from hd on.
    if (t < P.hd) {
        let first = t < P.half;
        let v = qraw[t];
        let other = qraw[select(t - P.half, t + P.half, first)];
        let k = t % P.half;
        let c = select(select(2u, 1u, k < P.sec1), 0u, k < P.sec0);
        let sc = sincos(f32(POS[m * P.n_comp + c]) * AUX[P.K + P.N + k]);
        let xa = select(other, v, first);
        let xb = select(v, other, first);
        let q = f32(Act(select(xb * sc.y + xa * sc.x, xa * sc.y - xb * sc.x, first)));
        if (r == 0u) {
            FOLDED[P.q_off + m * P.q_dim + h * P.hd + t] = q;
        }
        xs[t] = q * P.scale;
    }
    workgroupBarrier();
    let T = GEMV_WG_X * GEMV_WG_Y;
    let hk = h / (P.hq / (P.kv_dim / P.hd));
    let first = r * P.split_len;
    let last = min(first + P.split_len, P.past);
    var mx = -3.0e38;
    var l = 0.0;
    var acc = 0.0;
    for (var j0 = first; j0 < last; j0 += T) {
        let j = j0 + t;
        var s = -3.0e38;
        if (j < last) {
            let kb = j * P.kv_dim + hk * P.hd;
            var dot = 0.0;
            for (var d = 0u; d < P.hd; d++) {
                dot += xs[d] * f32(KVC[kb + d]);
            }
            s = dot;
        }
        let mt = max(mx, wg_max(t, s));
        let p = select(0.0, exp(s - mt), j < last);
        xs[P.hd + t] = p;
        let psum = wg_sum(t, p);
        let corr = exp(mx - mt);
        l = l * corr + psum;
        if (t < P.hd) {
            acc *= corr;
            let nk = min(T, last - j0);
            for (var jj = 0u; jj < nk; jj++) {
                acc += xs[P.hd + jj] * f32(KVC[P.v_base + (j0 + jj) * P.kv_dim + hk * P.hd + t]);
            }
        }
        mx = mt;
        workgroupBarrier();
    }
    let slot = (m * P.hq + h) * P.n_split + r;
    if (t < P.hd) {
        FOLDED[slot * P.hd + t] = acc;
    }
    if (t == 0u) {
        FOLDED[P.ml_off + 2u * slot] = mx;
        FOLDED[P.ml_off + 2u * slot + 1u] = l;
    }
}
#endif

@compute @workgroup_size(GEMV_WG_X, GEMV_WG_Y, GEMV_WG_Z)
fn gemv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = wid.z;
#ifdef FOLD
    // k | v first (rows from q_dim on), then the attention's (head, range) workgroups.
    let g = flat_wg(wid, nwg);
    let kv_groups = 2u * P.kv_dim / GEMV_WG_Y;
    if (g >= kv_groups) {
        fold_attention(m, g - kv_groups, lid);
        return;
    }
    let n = P.q_dim + gemv_row(g, lid.y);
#else
    let n = gemv_row(flat_wg(wid, nwg), lid.y);
#endif
#ifdef NORM_IN|COMBINE|ROPE_KV|FOLD_MERGE
    stage_row(m, lid.y * GEMV_WG_X + lid.x);
#endif
    lanes_reduce(lid, row_dot(m, n, lid.x));
    let r = lid.y * GEMV_WG_X;
    if (lid.x == 0u && n < P.N) {
#ifdef ROPE_KV
        store_qkv(m, n, lid.y);
#else
#ifdef SWIGLU
        // Gate rows (the first half) write SiLU(gate) * up, rounded as the separate GEMVs round.
        if (lid.y < GEMV_WG_Y / 2u) {
            let g = f32(Act(silu_f32(red[r])));
            Y[m * P.half + n] = Act(red[r + GEMV_WG_X * GEMV_WG_Y / 2u] * g);
        }
#else
        Y[m * P.N + n] = epilogue(m, n, red[r]);
#endif
#endif
    }
}
#endif
