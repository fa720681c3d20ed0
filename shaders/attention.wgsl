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
// `flash_blocked` (BLOCKED): `flash_tile` as two register-tiled GEMMs per step of BKV keys, as
// SIMT flash attention runs where there are no matrix units: each thread keeps a 4-query x
// 4*TK4-key block of the scores and a 4-query x 4*TD4-dim block of the output, so that every
// value read from workgroup memory feeds four or more multiply-adds (`flash_tile`: one).

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

#ifdef BLOCKED
// Thread (r, c) of RQ x CG: query rows 4r..4r+3 of the workgroup's BQ; score keys 4(u CG + c)..+3
// for u < TK4 and output dims 4(t CG + c)..+3 for t < TD4 (interleaved: neighbouring threads read
// neighbouring vec4s of workgroup memory, without bank conflicts).
const RQ: u32 = BQ / 4u;
const NT: u32 = RQ * CG;
const TK4: u32 = BKV / (4u * CG);
const TD4: u32 = HD / (4u * CG);
const HD4: u32 = HD / 4u;
const KV4: u32 = BKV / 4u;
// The step's probabilities, [key][row group]: one vec4 holds four queries' values for one key.
var<workgroup> Ps: array<vec4<f32>, BKV * RQ>;
// In turn: a DK-dim chunk of Q ([dim][row group], scaled) and of K ([dim][key group]); the
// threads' partial row maxima ([row group][c]); VK keys of V ([key][dim / 4]).
var<workgroup> Rg: array<vec4<f32>, REG4>;

fn q_at(i: u32, h: u32, d: u32) -> f32 {
    return f32(Q[min(i, P.n_q - 1u) * P.q_stride + P.q_off + h * HD + d]);
}

fn k_at(j: u32, last: u32, hk: u32, d: u32) -> f32 {
    return select(0.0, f32(K[min(j, last - 1u) * P.k_stride + P.k_off + hk * HD + d]), j < last);
}

// Which of keys js each of the thread's rows sees: bounds lo..hi per row (x, y, z, w).
fn visible(js: vec4<u32>, lo: u32, hi: u32) -> vec4<bool> {
    return (js >= vec4<u32>(lo)) & (js < vec4<u32>(hi));
}

fn max4(v: vec4<f32>) -> f32 {
    return max(max(v.x, v.y), max(v.z, v.w));
}

// One dim of S's chunk: the thread's four rows of Q times its keys.
fn qk_dim(s: ptr<function, array<vec4<f32>, 4u * TK4>>, dd: u32, r: u32, c: u32) {
    let qv = Rg[dd * RQ + r];
    for (var u = 0u; u < TK4; u++) {
        let kv = Rg[DK * RQ + dd * KV4 + u * CG + c];
        (*s)[u] += qv.x * kv;
        (*s)[TK4 + u] += qv.y * kv;
        (*s)[2u * TK4 + u] += qv.z * kv;
        (*s)[3u * TK4 + u] += qv.w * kv;
    }
}

// One staged key of V: its four rows' probabilities times the thread's dims, into the output.
fn pv_key(acc: ptr<function, array<vec4<f32>, 4u * TD4>>, psum: ptr<function, vec4<f32>>, v0: u32, jj: u32, r: u32, c: u32) {
    let pv = Ps[(v0 + jj) * RQ + r];
    *psum += pv;
    for (var t = 0u; t < TD4; t++) {
        let vv = Rg[jj * HD4 + t * CG + c];
        (*acc)[t] += pv.x * vv;
        (*acc)[TD4 + t] += pv.y * vv;
        (*acc)[2u * TD4 + t] += pv.z * vv;
        (*acc)[3u * TD4 + t] += pv.w * vv;
    }
}

@compute @workgroup_size(FLASH_BLOCKED_WG_X, FLASH_BLOCKED_WG_Y, FLASH_BLOCKED_WG_Z)
fn flash_blocked(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.y;
    let hk = h / (P.hq / P.hkv);
    let i0 = wid.x * BQ;
    let first = key_range(i0).x;
    let last = key_range(min(i0 + BQ, P.n_q) - 1u).y;
    let r = tid / CG;
    let c = tid % CG;
    // Each row's visible keys (rows past the end repeat the last query; they are not written).
    var lo = vec4<u32>(0u);
    var hi = vec4<u32>(0u);
    for (var e = 0u; e < 4u; e++) {
        let kr = key_range(min(i0 + 4u * r + e, P.n_q - 1u));
        lo[e] = kr.x;
        hi[e] = kr.y;
    }
    var m = vec4<f32>(NEG);
    var l = vec4<f32>(0.0);
    var acc: array<vec4<f32>, 4u * TD4>; // acc[e * TD4 + t]: row e, dims 4(t CG + c)..+3
    var s: array<vec4<f32>, 4u * TK4>; // s[e * TK4 + u]: row e, keys 4(u CG + c)..+3
    for (var j0 = first; j0 < last; j0 += BKV) {
        // S = (Q scale) Kᵀ over the step's keys, DK dims at a time. Zeroed by hand each step: in
        // Chromium (Tint, SwiftShader) an array declared in the loop was zeroed on the first round only.
        for (var x = 0u; x < 4u * TK4; x++) {
            s[x] = vec4<f32>(0.0);
        }
        for (var d0 = 0u; d0 < HD; d0 += DK) {
            for (var x = 0u; x < STAGE_QK; x++) {
                let idx = tid + x * NT;
                let dd = idx % DK;
                let g = idx / DK;
                if (g < RQ) {
                    let i = i0 + 4u * g;
                    Rg[dd * RQ + g] = vec4<f32>(q_at(i, h, d0 + dd), q_at(i + 1u, h, d0 + dd), q_at(i + 2u, h, d0 + dd), q_at(i + 3u, h, d0 + dd)) * P.scale;
                } else if (g < RQ + KV4) {
                    let j = j0 + 4u * (g - RQ);
                    Rg[DK * RQ + dd * KV4 + g - RQ] = vec4<f32>(k_at(j, last, hk, d0 + dd), k_at(j + 1u, last, hk, d0 + dd), k_at(j + 2u, last, hk, d0 + dd), k_at(j + 3u, last, hk, d0 + dd));
                }
            }
            workgroupBarrier();
            // Four dims per round, written out: lavapipe bounds an invocation to 65 535 loop
            // rounds in all and unrolls only loops that index a private array (VGGT's 30 000 keys
            // must fit); GPUs gain the independent loads.
            for (var d4 = 0u; d4 < DK; d4 += 4u) {
                qk_dim(&s, d4, r, c);
                qk_dim(&s, d4 + 1u, r, c);
                qk_dim(&s, d4 + 2u, r, c);
                qk_dim(&s, d4 + 3u, r, c);
            }
            workgroupBarrier();
        }
        // The rows' new maxima over the visible keys: each thread's, then the row group's.
        var pm = vec4<f32>(NEG);
        for (var u = 0u; u < TK4; u++) {
            let js = vec4<u32>(j0 + 4u * (u * CG + c)) + vec4<u32>(0u, 1u, 2u, 3u);
            for (var e = 0u; e < 4u; e++) {
                let sc = select(vec4<f32>(NEG), s[e * TK4 + u], visible(js, lo[e], hi[e]));
                s[e * TK4 + u] = sc;
                pm[e] = max(pm[e], max4(sc));
            }
        }
        Rg[r * CG + c] = pm;
        workgroupBarrier();
        var mn = m;
        for (var x = 0u; x < CG; x++) {
            mn = max(mn, Rg[r * CG + x]);
        }
        // Exactly 1 unless the maximum grew (as flash_tile).
        let corr = select(vec4<f32>(1.0), exp(m - mn), mn > m);
        m = mn;
        for (var u = 0u; u < TK4; u++) {
            let js = vec4<u32>(j0 + 4u * (u * CG + c)) + vec4<u32>(0u, 1u, 2u, 3u);
            var p: array<vec4<f32>, 4>;
            for (var e = 0u; e < 4u; e++) {
                p[e] = select(vec4<f32>(0.0), exp(s[e * TK4 + u] - vec4<f32>(mn[e])), visible(js, lo[e], hi[e]));
            }
            // Transposed: one vec4 per key holds the four rows.
            let kl = 4u * (u * CG + c);
            Ps[kl * RQ + r] = vec4<f32>(p[0].x, p[1].x, p[2].x, p[3].x);
            Ps[(kl + 1u) * RQ + r] = vec4<f32>(p[0].y, p[1].y, p[2].y, p[3].y);
            Ps[(kl + 2u) * RQ + r] = vec4<f32>(p[0].z, p[1].z, p[2].z, p[3].z);
            Ps[(kl + 3u) * RQ + r] = vec4<f32>(p[0].w, p[1].w, p[2].w, p[3].w);
        }
        for (var t = 0u; t < TD4; t++) {
            acc[t] *= corr.x;
            acc[TD4 + t] *= corr.y;
            acc[2u * TD4 + t] *= corr.z;
            acc[3u * TD4 + t] *= corr.w;
        }
        workgroupBarrier();
        // O += P V, VK keys of V staged at a time; every thread of a row group sums the same
        // probabilities in the same order, so their row sums agree.
        var psum = vec4<f32>(0.0);
        for (var v0 = 0u; v0 < BKV; v0 += VK) {
            for (var x = 0u; x < STAGE_V; x++) {
                let idx = tid + x * NT;
                if (idx < VK * HD4) {
                    let j = j0 + v0 + idx / HD4;
                    let b = min(j, last - 1u) * P.v_stride + P.v_off + hk * HD + 4u * (idx % HD4);
                    let v = vec4<f32>(f32(V[b]), f32(V[b + 1u]), f32(V[b + 2u]), f32(V[b + 3u]));
                    Rg[idx] = select(vec4<f32>(0.0), v, j < last);
                }
            }
            workgroupBarrier();
            // Four keys per round, written out (as the dims of S above).
            for (var j4 = 0u; j4 < VK; j4 += 4u) {
                pv_key(&acc, &psum, v0, j4, r, c);
                pv_key(&acc, &psum, v0, j4 + 1u, r, c);
                pv_key(&acc, &psum, v0, j4 + 2u, r, c);
                pv_key(&acc, &psum, v0, j4 + 3u, r, c);
            }
            workgroupBarrier();
        }
        l = l * corr + psum;
    }
    let inv = select(vec4<f32>(0.0), 1.0 / l, l > vec4<f32>(0.0));
    for (var e = 0u; e < 4u; e++) {
        let i = i0 + 4u * r + e;
        if (i < P.n_q) {
            let ob = i * P.o_stride + P.o_off + h * HD;
            for (var t = 0u; t < TD4; t++) {
                let v = acc[e * TD4 + t] * inv[e];
                let d = 4u * (t * CG + c);
                O[ob + d] = Act(v.x);
                O[ob + d + 1u] = Act(v.y);
                O[ob + d + 2u] = Act(v.z);
                O[ob + d + 3u] = Act(v.w);
            }
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
