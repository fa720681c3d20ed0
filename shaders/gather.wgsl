// Row gather: Y[i, off + j] = X[IDX[i], j] (a permutation or selection of activation rows, into
// columns off.. of Y, which has `wide` columns); and column placement: Y[r, off + j] = X[row0 + r, j]
// (a concatenation along channels, of a range of X's rows).

// Declared by the contract (src/kernels/gather.rs): Params P; X, IDX (gather only), Y.

@compute @workgroup_size(GATHER_WG_X, GATHER_WG_Y, GATHER_WG_Z)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * GATHER_WG_X;
    if (i >= P.n_rows * P.dim) {
        return;
    }
    let r = i / P.dim;
    Y[r * P.wide + P.off + i % P.dim] = X[IDX[r] * P.dim + i % P.dim];
}

@compute @workgroup_size(PLACE_COLS_WG_X, PLACE_COLS_WG_Y, PLACE_COLS_WG_Z)
fn place_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * PLACE_COLS_WG_X;
    if (i >= P.n_rows * P.dim) {
        return;
    }
    let r = i / P.dim;
    Y[r * P.wide + P.off + i % P.dim] = X[P.row0 * P.dim + i];
}
