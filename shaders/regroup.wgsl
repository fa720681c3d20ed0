// VGGT patch tokens regrouped for the Spatial-MLLM connectors: one output row per merged Qwen token
// (t, I, J), gathering the 8 VGGT patch tokens {frames 2t, 2t+1} x {rows 2I, 2I+1} x {cols 2J, 2J+1}
// of C channels each into 8*C features, in one of the two checkpoint generations' orders:
//   order 0 (v1.0 VGGTEmbeddingMerger): f = ((tf*2 + sh)*2 + sw)*C + d
//   order 1 (v1.1 MLPAddConnector):     f = ((sh*2 + sw)*C + d)*2 + tf
// The C channels come in two halves, A (channels 0 .. C/2) and B (C/2 .. C), each [frames * P, C/2]
// with P tokens per frame, patches from `patch_start` in row-major (h, w): VGGT's frame and global
// outputs, never concatenated into one buffer (at 32 frames that would exceed a 128 MiB binding).
// Y holds output rows r0 .. r0 + n_rows.

// Declared by the contract (src/kernels/regroup.rs): Params P; A, B, Y.

@compute @workgroup_size(REGROUP_WG_X, REGROUP_WG_Y, REGROUP_WG_Z)
fn regroup(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * REGROUP_WG_X;
    let width = 8u * P.c;
    if (i >= P.n_rows * width) {
        return;
    }
    let r = P.r0 + i / width;
    let f = i % width;
    var tf: u32;
    var sh: u32;
    var sw: u32;
    var d: u32;
    if (P.order == 0u) {
        d = f % P.c;
        let blk = f / P.c;
        sw = blk % 2u;
        sh = (blk / 2u) % 2u;
        tf = blk / 4u;
    } else {
        tf = f % 2u;
        d = (f / 2u) % P.c;
        let blk = f / (2u * P.c);
        sw = blk % 2u;
        sh = blk / 2u;
    }
    let mw = P.grid_w / 2u;
    let mh = P.grid_h / 2u;
    let jj = r % mw;
    let ii = (r / mw) % mh;
    let t = r / (mw * mh);
    let frame = 2u * t + tf;
    let tok = frame * P.p + P.patch_start + (2u * ii + sh) * P.grid_w + 2u * jj + sw;
    let half = P.c / 2u;
    if (d < half) {
        Y[i] = A[tok * half + d];
    } else {
        Y[i] = B[tok * half + d - half];
    }
}
