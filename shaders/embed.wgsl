// Embedding gather from a packed (f16 / q8 / q4) table: Y[t, :] = W[ids[t], :]. A table split by
// rows is gathered part by part: a part holds rows row0 .. row0 + vocab and writes only those ids.

// Declared by the contract (src/kernels/embed.rs): Params P; IDS, W (the packed table), Y.

@compute @workgroup_size(EMBED_WG_X, EMBED_WG_Y, EMBED_WG_Z)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * EMBED_WG_X;
    let chunks = (P.dim + 3u) / 4u;
    if (idx >= P.n_tok * chunks) {
        return;
    }
    let t = idx / chunks;
    let d0 = (idx % chunks) * 4u;
    let id = IDS[t];
    if (id < P.row0 || id - P.row0 >= P.vocab) {
        return;
    }
    let row = id - P.row0;
    let w = load_w4(row, d0, P.kp, P.soff);
    for (var j = 0u; j < 4u; j++) {
        if (d0 + j < P.dim) {
            Y[t * P.dim + d0 + j] = Act(w[j]);
        }
    }
}
