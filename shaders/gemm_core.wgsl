// The tiled GEMM shared by the matmul and conv families (only with the GEMM flag):
//   C[z][m, n] = sum over k of A(z, m, k) * B(z, k, n),  f32 accumulation in k order,
// for m < P.M, n < P.N, k < P.K (the including family's Params has these three fields).
// The tiling comes from the variant's constants (src/gpu/gemm_tile.rs, chosen per adapter):
// GEMM_BM x GEMM_BN outputs per workgroup, K in steps of GEMM_BK, GEMM_TM x GEMM_TN outputs per
// thread (GEMM_TN a multiple of 4); the workgroup, (BN/TN, BM/TM, 1) threads, is the contract's
// GEMM_WG_X/Y/Z (computed per variant by GemmTile::entry_workgroup). Workgroups: (column tiles,
// row tiles, z). Every output sums its products in the same order (k = 0, 1, ..) whatever the
// tiling.
//
// The family supplies the loads and the store (hooks):
//   struct GemmRow, fn gemm_row(z, m) -> GemmRow: what a row's loads need, computed once per
//     thread (matmul: the row; conv: the frame's base and the output pixel's input origin).
//   struct GemmK, fn gemm_k_at(k) -> GemmK, fn gemm_k_next(c) -> GemmK: a K cursor at this
//     thread's k, moved on by GEMM_BK each step (conv: the (ky, kx, ci) taps, no division).
//   fn gemm_a4(r: GemmRow, k, c: GemmK) -> vec4<f32>: A[m, k..k+3], zero where m >= M or k >= K.
//   fn gemm_b4(n, k, c: GemmK) -> vec4<f32>: B[k..k+3, n], zero where n >= N or k >= K; or, with
//     the B_KN flag, fn gemm_b4n(k, n) -> vec4<f32>: B[k, n..n+3] (weights stored [K, N]).
//   fn gemm_store(z, m, n, acc): the epilogue and the output layout (called for m < M, n < N).
// With COOP (native adapters with cooperative matrices, f16 path): the same loads, staged as f16,
// multiplied by the matrix units in 8x8x8 steps with f32 accumulation (see the second kernel).

#ifdef GEMM
#ifdef COOP
const GEMM_SGM: u32 = GEMM_BM / (8u * GEMM_TM); // subgroups along m
const GEMM_SGN: u32 = GEMM_BN / (8u * GEMM_TN); // subgroups along n
const GEMM_NT: u32 = GEMM_SGM * GEMM_SGN * COOP_S;
alias GemmS = f16; // the staged tiles' type: the matrix units take f16
#else
const GEMM_WX: u32 = GEMM_WG_X; // threads along n: GEMM_BN / GEMM_TN
const GEMM_WY: u32 = GEMM_WG_Y; // threads along m: GEMM_BM / GEMM_TM
const GEMM_NT: u32 = GEMM_WX * GEMM_WY;
alias GemmS = f32;
#endif
const GEMM_KV: u32 = GEMM_BK / 4u; // vec4s along k per tile row
const GEMM_RS: u32 = GEMM_NT / GEMM_KV; // tile rows between one thread's loads
const GEMM_UA: u32 = GEMM_BM / GEMM_RS; // A vec4s per thread per step
const GEMM_UB: u32 = GEMM_BN / GEMM_RS; // B vec4s per thread per step
#ifdef COOP
var<workgroup> As: array<GemmS, GEMM_BK * GEMM_BM>; // [BK][BM]
var<workgroup> Bs: array<GemmS, GEMM_BK * GEMM_BN>; // [BK][BN]

fn gemm_put_a(i: u32, v: GemmS) {
    As[i] = v;
}

fn gemm_put_b(i: u32, v: GemmS) {
    Bs[i] = v;
}

// Four values along n at i (a multiple of 4).
fn gemm_put_b4(i: u32, v: vec4<GemmS>) {
    Bs[i] = v.x;
    Bs[i + 1u] = v.y;
    Bs[i + 2u] = v.z;
    Bs[i + 3u] = v.w;
}
#else
// The same [BK][BM] and [BK][BN] tiles as vec4s along m and n: the multiply loop takes four
// values per workgroup-memory load (GEMM_TM and GEMM_TN are multiples of 4).
var<workgroup> As: array<vec4<f32>, GEMM_BK * GEMM_BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, GEMM_BK * GEMM_BN / 4u>;

fn gemm_put_a(i: u32, v: GemmS) {
    As[i / 4u][i % 4u] = v;
}

fn gemm_put_b(i: u32, v: GemmS) {
    Bs[i / 4u][i % 4u] = v;
}

fn gemm_put_b4(i: u32, v: vec4<GemmS>) {
    Bs[i / 4u] = v;
}
#endif

// Thread `tid` loads k = k0 + lk .. k0 + lk + 3 of tile rows lr, lr + RS, .. (lr = tid / KV, lk =
// (tid % KV) * 4): the rows' load state, computed once per thread.
fn gemm_rows(z: u32, m0: u32, tid: u32) -> array<GemmRow, GEMM_UA> {
    var rows: array<GemmRow, GEMM_UA>;
    for (var i = 0u; i < GEMM_UA; i++) {
        rows[i] = gemm_row(z, m0 + tid / GEMM_KV + i * GEMM_RS);
    }
    return rows;
}

// This thread's part of the K step at k0, read from the family's buffers.
struct GemmFetch {
    a: array<vec4<GemmS>, GEMM_UA>,
    b: array<vec4<GemmS>, GEMM_UB>,
}

fn gemm_fetch(tid: u32, k0: u32, n0: u32, rows: ptr<function, array<GemmRow, GEMM_UA>>, kc: GemmK) -> GemmFetch {
    var f: GemmFetch;
    let k = k0 + (tid % GEMM_KV) * 4u;
    for (var i = 0u; i < GEMM_UA; i++) {
        f.a[i] = vec4<GemmS>(gemm_a4((*rows)[i], k, kc));
    }
    for (var i = 0u; i < GEMM_UB; i++) {
#ifdef B_KN
        let u = tid + i * GEMM_NT;
        f.b[i] = vec4<GemmS>(gemm_b4n(k0 + u / (GEMM_BN / 4u), n0 + (u % (GEMM_BN / 4u)) * 4u));
#else
        f.b[i] = vec4<GemmS>(gemm_b4(n0 + tid / GEMM_KV + i * GEMM_RS, k, kc));
#endif
    }
    return f;
}

// A fetched part into As and Bs: A's four k values of each row, B's four k values of each
// column (B_KN: four columns of one k).
fn gemm_put(tid: u32, f: GemmFetch) {
    let lr = tid / GEMM_KV;
    let lk = (tid % GEMM_KV) * 4u;
    for (var i = 0u; i < GEMM_UA; i++) {
        let a = f.a[i];
        let r = lr + i * GEMM_RS;
        gemm_put_a(lk * GEMM_BM + r, a.x);
        gemm_put_a((lk + 1u) * GEMM_BM + r, a.y);
        gemm_put_a((lk + 2u) * GEMM_BM + r, a.z);
        gemm_put_a((lk + 3u) * GEMM_BM + r, a.w);
    }
    for (var i = 0u; i < GEMM_UB; i++) {
        let b = f.b[i];
#ifdef B_KN
        let u = tid + i * GEMM_NT;
        gemm_put_b4((u / (GEMM_BN / 4u)) * GEMM_BN + (u % (GEMM_BN / 4u)) * 4u, b);
#else
        let r = lr + i * GEMM_RS;
        gemm_put_b(lk * GEMM_BN + r, b.x);
        gemm_put_b((lk + 1u) * GEMM_BN + r, b.y);
        gemm_put_b((lk + 2u) * GEMM_BN + r, b.z);
        gemm_put_b((lk + 3u) * GEMM_BN + r, b.w);
#endif
    }
}

#ifndef COOP
const GEMM_NV: u32 = GEMM_TN / 4u; // accumulator vec4s per output row
const GEMM_MV: u32 = GEMM_TM / 4u; // vec4s of A per k

@compute @workgroup_size(GEMM_WG_X, GEMM_WG_Y, GEMM_WG_Z)
fn gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.y * GEMM_WX + lid.x;
    let z = wid.z;
    let m0 = wid.y * GEMM_BM;
    let n0 = wid.x * GEMM_BN;
    var rows = gemm_rows(z, m0, tid);
    var kc = gemm_k_at((tid % GEMM_KV) * 4u);
    var acc: array<vec4<f32>, GEMM_TM * GEMM_NV>;
    // Software pipelining: the next K step's global loads are in flight while this one multiplies.
    var next = gemm_fetch(tid, 0u, n0, &rows, kc);
    for (var k0 = 0u; k0 < P.K; k0 += GEMM_BK) {
        gemm_put(tid, next);
        workgroupBarrier();
        kc = gemm_k_next(kc);
        if (k0 + GEMM_BK < P.K) {
            next = gemm_fetch(tid, k0 + GEMM_BK, n0, &rows, kc);
        }
        for (var kk = 0u; kk < GEMM_BK; kk++) {
            // This thread's GEMM_TM values of A and GEMM_TN of B at kk, four per load.
            let ab = (kk * GEMM_BM + lid.y * GEMM_TM) / 4u;
            var a: array<vec4<f32>, GEMM_MV>;
            for (var u = 0u; u < GEMM_MV; u++) {
                a[u] = As[ab + u];
            }
            let bb = (kk * GEMM_BN + lid.x * GEMM_TN) / 4u;
            for (var v = 0u; v < GEMM_NV; v++) {
                let b = Bs[bb + v];
                for (var i = 0u; i < GEMM_TM; i++) {
                    acc[i * GEMM_NV + v] += a[i / 4u][i % 4u] * b;
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < GEMM_TM; i++) {
        let m = m0 + lid.y * GEMM_TM + i;
        for (var v = 0u; v < GEMM_NV; v++) {
            for (var j = 0u; j < 4u; j++) {
                let n = n0 + lid.x * GEMM_TN + v * 4u + j;
                if (m < P.M && n < P.N) {
                    gemm_store(z, m, n, acc[i * GEMM_NV + v][j]);
                }
            }
        }
    }
}
#endif

#ifdef COOP
// The GEMM on matrix units. The workgroup is GEMM_SGM x GEMM_SGN subgroups of COOP_S invocations
// (the adapter's one subgroup size); each subgroup owns GEMM_TM x GEMM_TN 8x8 tiles of the
// BM x BN block, accumulated in f32 cooperative matrices over the whole K loop. A and B are staged
// as f16 in workgroup memory by gemm_fetch and gemm_put, as in the plain kernel. Products are summed in the
// matrix units' own order, so results differ from the plain kernel's in the last bits (f16
// inputs; tests allow for it).
const GEMM_TILES: u32 = GEMM_TM * GEMM_TN;
// One 8x8 tile per subgroup on its way to the epilogue.
var<workgroup> Cs: array<f32, GEMM_SGM * GEMM_SGN * 64u>;

@compute @workgroup_size(GEMM_WG_X, GEMM_WG_Y, GEMM_WG_Z)
fn gemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let z = wid.z;
    let m0 = wid.y * GEMM_BM;
    let n0 = wid.x * GEMM_BN;
    var rows = gemm_rows(z, m0, tid);
    var kc = gemm_k_at((tid % GEMM_KV) * 4u);
    // This subgroup's first row and column in the block.
    let sm = (sg / GEMM_SGN) * GEMM_TM * 8u;
    let sn = (sg % GEMM_SGN) * GEMM_TN * 8u;
    var acc: array<coop_mat8x8<f32, C>, GEMM_TILES>;
    var bt: array<coop_mat8x8<f16, B>, GEMM_TN>;
    for (var k0 = 0u; k0 < P.K; k0 += GEMM_BK) {
        gemm_put(tid, gemm_fetch(tid, k0, n0, &rows, kc));
        workgroupBarrier();
        for (var kk = 0u; kk < GEMM_BK; kk += 8u) {
            for (var j = 0u; j < GEMM_TN; j++) {
                bt[j] = coopLoadT<coop_mat8x8<f16, B>>(&Bs[kk * GEMM_BN + sn + j * 8u], GEMM_BN);
            }
            for (var i = 0u; i < GEMM_TM; i++) {
                let a = coopLoad<coop_mat8x8<f16, A>>(&As[kk * GEMM_BM + sm + i * 8u], GEMM_BM);
                for (var j = 0u; j < GEMM_TN; j++) {
                    acc[i * GEMM_TN + j] = coopMultiplyAdd(a, bt[j], acc[i * GEMM_TN + j]);
                }
            }
        }
        workgroupBarrier();
        kc = gemm_k_next(kc);
    }
    // Each tile through workgroup memory to the family's epilogue, element by element.
    let cs = sg * 64u;
    for (var t = 0u; t < GEMM_TILES; t++) {
        coopStoreT(acc[t], &Cs[cs], 8u);
        workgroupBarrier();
        for (var e = lane; e < 64u; e += COOP_S) {
            let m = m0 + sm + (t / GEMM_TN) * 8u + e / 8u;
            let n = n0 + sn + (t % GEMM_TN) * 8u + e % 8u;
            if (m < P.M && n < P.N) {
                gemm_store(z, m, n, Cs[cs + e]);
            }
        }
        workgroupBarrier();
    }
}
#endif
#endif
