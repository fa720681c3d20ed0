// Flash attention with online softmax; no score matrix is ever stored.
// Q, K, V and O are token-major with per-token strides and element offsets, so that Q/K/V can be
// read straight out of a fused QKV projection or a KV cache. Query head h reads kv head
// h / (hq / hkv) (grouped-query attention). Masks: causal (key j visible to query i when
// j <= q_pos0 + i) and block-diagonal (VARLEN: query and key in the same segment of SEG, the
// cumulative segment starts, as for the ViT windows).
// `flash_tile`: 64 queries per workgroup, one per thread, K/V tiles staged in workgroup memory,
// keys taken four at a time (BKV is a multiple of 4).
// `flash_rows`: one query per workgroup of 128 threads (decode): keys split across threads for
// the scores, head dims across threads for the weighted sum of V. With SPLIT each workgroup takes
// one range of the keys and leaves a partial result, and `flash_combine` merges the ranges
// (flash-decoding): a decode step has only one query per head, too few workgroups for a GPU.
// `flash_coop` (COOP; native adapters with cooperative matrices, f16 path): `flash_tile` on the
// matrix units, BQ queries per workgroup, keys BKV at a time.

// Declared by the contract (src/kernels/attention.rs): Params P; Q, K, V (not in flash_combine),
// O (unless SPLIT), SEG (VARLEN), PART and ML (SPLIT, COMBINE).

const NEG: f32 = -3.0e38;

// Index of the segment that holds token i (SEG[s] <= i < SEG[s + 1]).
fn segment_of(i: u32) -> u32 {
#ifdef VARLEN
    var lo = 0u;
    var hi = P.n_seg;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (SEG[mid] <= i) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
#else
    return 0u;
#endif
}

// Keys [first, last) that query i may see before the causal limit.
fn key_range(i: u32) -> vec2<u32> {
#ifdef VARLEN
    let s = segment_of(i);
    var r = vec2<u32>(SEG[s], SEG[s + 1u]);
#else
    var r = vec2<u32>(0u, P.n_kv);
#endif
    if (P.causal != 0u) {
        r.y = min(r.y, P.q_pos0 + i + 1u);
    }
    return r;
}

#ifdef TILE
const BQ: u32 = FLASH_TILE_WG_X; // one query per thread
const HD4: u32 = HD / 4u;
var<workgroup> Ks: array<vec4<f32>, KV_TILE / 4u>;
var<workgroup> Vs: array<vec4<f32>, KV_TILE / 4u>;

fn load4(buf_is_k: bool, base: u32) -> vec4<f32> {
    if (buf_is_k) {
        return vec4<f32>(f32(K[base]), f32(K[base + 1u]), f32(K[base + 2u]), f32(K[base + 3u]));
    }
    return vec4<f32>(f32(V[base]), f32(V[base + 1u]), f32(V[base + 2u]), f32(V[base + 3u]));
}

@compute @workgroup_size(FLASH_TILE_WG_X, FLASH_TILE_WG_Y, FLASH_TILE_WG_Z)
fn flash_tile(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.y;
    let hk = h / (P.hq / P.hkv);
    let i0 = wid.x * BQ;
    let ilast = min(i0 + BQ, P.n_q) - 1u;
    let i = i0 + lid.x;
    let valid = i < P.n_q;
    let iq = min(i, P.n_q - 1u);
    let mine = key_range(iq);
    // The workgroup walks the union of its queries' key ranges (queries are sorted, segments contiguous).
    let first = key_range(i0).x;
    let last = key_range(ilast).y;

    var q: array<vec4<f32>, HD4>;
    var acc: array<vec4<f32>, HD4>;
    let qb = iq * P.q_stride + P.q_off + h * HD;
    for (var d = 0u; d < HD4; d++) {
        let b = qb + 4u * d;
        q[d] = vec4<f32>(f32(Q[b]), f32(Q[b + 1u]), f32(Q[b + 2u]), f32(Q[b + 3u])) * P.scale;
    }
    var m = NEG;
    var l = 0.0;
    for (var j0 = first; j0 < last; j0 += BKV) {
        for (var e = lid.x; e < BKV * HD4; e += BQ) {
            let j = j0 + e / HD4;
            let d = (e % HD4) * 4u;
            if (j < last) {
                Ks[e] = load4(true, j * P.k_stride + P.k_off + hk * HD + d);
                Vs[e] = load4(false, j * P.v_stride + P.v_off + hk * HD + d);
            } else {
                Ks[e] = vec4<f32>(0.0); // keys past the end: masked, but never stale
                Vs[e] = vec4<f32>(0.0);
            }
        }
        workgroupBarrier();
        // Online softmax over four keys at a time: four independent dot products keep the ALUs
        // busy, and the accumulator is rescaled once per group instead of once per key.
        let jn = min(BKV, last - j0);
        for (var jj = 0u; jj < jn; jj += 4u) {
            // One short loop per key (not one loop of four): compilers unroll loops this small, and
            // lavapipe bounds every invocation to 65 535 loop iterations in all, unrolled ones aside.
            let kb = jj * HD4;
            var d0 = vec4<f32>(0.0);
            for (var d = 0u; d < HD4; d++) { d0 += q[d] * Ks[kb + d]; }
            var d1 = vec4<f32>(0.0);
            for (var d = 0u; d < HD4; d++) { d1 += q[d] * Ks[kb + HD4 + d]; }
            var d2 = vec4<f32>(0.0);
            for (var d = 0u; d < HD4; d++) { d2 += q[d] * Ks[kb + 2u * HD4 + d]; }
            var d3 = vec4<f32>(0.0);
            for (var d = 0u; d < HD4; d++) { d3 += q[d] * Ks[kb + 3u * HD4 + d]; }
            let dots = vec4<f32>(dot(d0, vec4<f32>(1.0)), dot(d1, vec4<f32>(1.0)), dot(d2, vec4<f32>(1.0)), dot(d3, vec4<f32>(1.0)));
            let js = vec4<u32>(j0 + jj) + vec4<u32>(0u, 1u, 2u, 3u);
            let ok = (js >= vec4<u32>(mine.x)) & (js < vec4<u32>(min(mine.y, j0 + jn)));
            if (any(ok)) {
                let sc = select(vec4<f32>(NEG), dots, ok);
                let mn = max(m, max(max(sc.x, sc.y), max(sc.z, sc.w)));
                // Exactly 1 unless the maximum grew, whatever a GPU's approximate exp gives for 0:
                // over thousands of groups any shortfall would fade the older keys.
                let corr = select(1.0, exp(m - mn), mn > m);
                let p = select(vec4<f32>(0.0), exp(sc - vec4<f32>(mn)), ok);
                l = l * corr + (p.x + p.y + p.z + p.w);
                for (var d = 0u; d < HD4; d++) { acc[d] = acc[d] * corr + p.x * Vs[kb + d]; }
                for (var d = 0u; d < HD4; d++) { acc[d] += p.y * Vs[kb + HD4 + d]; }
                for (var d = 0u; d < HD4; d++) { acc[d] += p.z * Vs[kb + 2u * HD4 + d]; }
                for (var d = 0u; d < HD4; d++) { acc[d] += p.w * Vs[kb + 3u * HD4 + d]; }
                m = mn;
            }
        }
        workgroupBarrier();
    }
    if (valid) {
        let inv = select(0.0, 1.0 / l, l > 0.0);
        let ob = i * P.o_stride + P.o_off + h * HD;
        for (var d = 0u; d < HD4; d++) {
            let v = acc[d] * inv;
            O[ob + 4u * d] = Act(v.x);
            O[ob + 4u * d + 1u] = Act(v.y);
            O[ob + 4u * d + 2u] = Act(v.z);
            O[ob + 4u * d + 3u] = Act(v.w);
        }
    }
}
#endif

#ifdef ROWS
const T: u32 = FLASH_ROWS_WG_X;
var<workgroup> qs: array<f32, T>;
var<workgroup> ps: array<f32, T>;

@compute @workgroup_size(FLASH_ROWS_WG_X, FLASH_ROWS_WG_Y, FLASH_ROWS_WG_Z)
fn flash_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = lid.x;
#ifdef SPLIT
    let qh = flat_wg(wid, nwg) / P.n_split;
    let part = flat_wg(wid, nwg) % P.n_split;
#else
    let qh = flat_wg(wid, nwg);
#endif
    let i = qh / P.hq;
    let h = qh % P.hq;
    let hk = h / (P.hq / P.hkv);
    let iq = min(i, P.n_q - 1u);
    if (t < HD) {
        qs[t] = f32(Q[iq * P.q_stride + P.q_off + h * HD + t]) * P.scale;
    }
    workgroupBarrier();
    var r = key_range(iq);
#ifdef SPLIT
    r = vec2<u32>(max(r.x, part * P.split_len), min(r.y, (part + 1u) * P.split_len));
#endif
    var m = NEG;
    var l = 0.0;
    var acc = 0.0;
    for (var j0 = r.x; j0 < r.y; j0 += T) {
        let j = j0 + t;
        var s = NEG;
        if (j < r.y) {
            let kb = j * P.k_stride + P.k_off + hk * HD;
            var dot = 0.0;
            for (var d = 0u; d < HD; d++) {
                dot += qs[d] * f32(K[kb + d]);
            }
            s = dot;
        }
        let mt = max(m, wg_max(t, s));
        let p = select(0.0, exp(s - mt), j < r.y);
        ps[t] = p;
        let psum = wg_sum(t, p);
        let corr = exp(m - mt);
        l = l * corr + psum;
        if (t < HD) {
            acc *= corr;
            let n = min(T, r.y - j0);
            for (var jj = 0u; jj < n; jj++) {
                acc += ps[jj] * f32(V[(j0 + jj) * P.v_stride + P.v_off + hk * HD + t]);
            }
        }
        m = mt;
        workgroupBarrier();
    }
#ifdef SPLIT
    let slot = qh * P.n_split + part;
    if (i < P.n_q && t < HD) {
        PART[slot * HD + t] = acc;
    }
    if (i < P.n_q && t == 0u) {
        ML[slot] = vec2<f32>(m, l);
    }
#else
    if (i < P.n_q && t < HD) {
        O[i * P.o_stride + P.o_off + h * HD + t] = Act(select(0.0, acc / l, l > 0.0));
    }
#endif
}
#endif

#ifdef COOP
// Flash attention on matrix units: per tile of BKV keys, S = Q Kᵀ (8x8 tiles of f16 products
// summed in f32), the online softmax by one thread per query row, then O = O * corr + P V with
// the accumulator O in workgroup memory (a cooperative matrix cannot be rescaled row by row).
// The NSG subgroups of COOP_S invocations take the 8x8 tiles of S, then of O, in turn.
const NT: u32 = NSG * COOP_S;
const SJ: u32 = BKV / 8u; // S tiles per query block row
const OJ: u32 = HD / 8u; // O tiles per query block row
var<workgroup> Qs: array<f16, BQ * HD>; // [BQ][HD], scaled
var<workgroup> Ks: array<f16, BKV * HD>; // [BKV][HD]
var<workgroup> Vs: array<f16, BKV * HD>; // [BKV][HD]
var<workgroup> Ss: array<f32, BQ * BKV>; // scores
var<workgroup> Ps: array<f16, BQ * BKV>; // probabilities
var<workgroup> Os: array<f32, BQ * HD>; // the unnormalised output
var<workgroup> Cr: array<f32, BQ>; // each row's rescaling this step

@compute @workgroup_size(FLASH_COOP_WG_X, FLASH_COOP_WG_Y, FLASH_COOP_WG_Z)
fn flash_coop(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_id) sg: u32) {
    let h = wid.y;
    let hk = h / (P.hq / P.hkv);
    let i0 = wid.x * BQ;
    let ilast = min(i0 + BQ, P.n_q) - 1u;
    let first = key_range(i0).x;
    let last = key_range(ilast).y;
    for (var e = tid; e < BQ * HD; e += NT) {
        let i = min(i0 + e / HD, P.n_q - 1u);
        Qs[e] = f16(f32(Q[i * P.q_stride + P.q_off + h * HD + e % HD]) * P.scale);
        Os[e] = 0.0;
    }
    // Thread r < BQ keeps query row r's running maximum and sum.
    let row = min(tid, BQ - 1u);
    let mine = key_range(min(i0 + row, P.n_q - 1u));
    var m = NEG;
    var l = 0.0;
    for (var j0 = first; j0 < last; j0 += BKV) {
        for (var e = tid; e < BKV * HD; e += NT) {
            let j = j0 + e / HD;
            let d = e % HD;
            if (j < last) {
                Ks[e] = f16(K[j * P.k_stride + P.k_off + hk * HD + d]);
                Vs[e] = f16(V[j * P.v_stride + P.v_off + hk * HD + d]);
            } else {
                Ks[e] = f16(0.0);
                Vs[e] = f16(0.0);
            }
        }
        workgroupBarrier();
        for (var t = sg; t < (BQ / 8u) * SJ; t += NSG) {
            let qi = (t / SJ) * 8u;
            let kj = (t % SJ) * 8u;
            var s: coop_mat8x8<f32, C>;
            for (var d = 0u; d < HD; d += 8u) {
                let a = coopLoadT<coop_mat8x8<f16, A>>(&Qs[qi * HD + d], HD);
                let b = coopLoad<coop_mat8x8<f16, B>>(&Ks[kj * HD + d], HD);
                s = coopMultiplyAdd(a, b, s);
            }
            coopStoreT(s, &Ss[qi * BKV + kj], BKV);
        }
        workgroupBarrier();
        if (tid < BQ) {
            var mn = m;
            for (var j = 0u; j < BKV; j++) {
                let key = j0 + j;
                if (key >= mine.x && key < mine.y) {
                    mn = max(mn, Ss[tid * BKV + j]);
                }
            }
            // Exactly 1 unless the maximum grew (as flash_tile).
            let corr = select(1.0, exp(m - mn), mn > m);
            var sum = 0.0;
            for (var j = 0u; j < BKV; j++) {
                let key = j0 + j;
                var p = 0.0;
                if (key >= mine.x && key < mine.y) {
                    p = exp(Ss[tid * BKV + j] - mn);
                }
                Ps[tid * BKV + j] = f16(p);
                sum += p;
            }
            l = l * corr + sum;
            m = mn;
            Cr[tid] = corr;
        }
        workgroupBarrier();
        for (var e = tid; e < BQ * HD; e += NT) {
            Os[e] *= Cr[e / HD];
        }
        workgroupBarrier();
        for (var t = sg; t < (BQ / 8u) * OJ; t += NSG) {
            let qi = (t / OJ) * 8u;
            let d = (t % OJ) * 8u;
            var o = coopLoadT<coop_mat8x8<f32, C>>(&Os[qi * HD + d], HD);
            for (var j = 0u; j < BKV; j += 8u) {
                let a = coopLoadT<coop_mat8x8<f16, A>>(&Ps[qi * BKV + j], BKV);
                let b = coopLoadT<coop_mat8x8<f16, B>>(&Vs[j * HD + d], HD);
                o = coopMultiplyAdd(a, b, o);
            }
            coopStoreT(o, &Os[qi * HD + d], HD);
        }
        workgroupBarrier();
    }
    if (tid < BQ) {
        Cr[tid] = select(0.0, 1.0 / l, l > 0.0);
    }
    workgroupBarrier();
    for (var e = tid; e < BQ * HD; e += NT) {
        let i = i0 + e / HD;
        if (i < P.n_q) {
            O[i * P.o_stride + P.o_off + h * HD + e % HD] = Act(Os[e] * Cr[e / HD]);
        }
    }
}
#endif

#ifdef COMBINE
// One workgroup per (query, head): the key ranges' partial results rescaled to their common
// maximum and summed.
@compute @workgroup_size(FLASH_COMBINE_WG_X, FLASH_COMBINE_WG_Y, FLASH_COMBINE_WG_Z)
fn flash_combine(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = lid.x;
    let qh = flat_wg(wid, nwg);
    let i = qh / P.hq;
    let h = qh % P.hq;
    if (i >= P.n_q) {
        return;
    }
    let base = qh * P.n_split;
    var mx = NEG;
    for (var s = 0u; s < P.n_split; s++) {
        mx = max(mx, ML[base + s].x);
    }
    var l = 0.0;
    var acc = 0.0;
    for (var s = 0u; s < P.n_split; s++) {
        let ml = ML[base + s];
        // Empty ranges (max NEG, sum 0) weigh nothing.
        let w = select(0.0, exp(ml.x - mx), ml.y > 0.0);
        l += w * ml.y;
        if (t < HD) {
            acc += w * PART[(base + s) * HD + t];
        }
    }
    if (t < HD) {
        O[i * P.o_stride + P.o_off + h * HD + t] = Act(select(0.0, acc / l, l > 0.0));
    }
}
#endif
