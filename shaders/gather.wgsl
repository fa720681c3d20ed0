// Row gather: Y[i, off + j] = X[IDX[i], j] (a permutation or selection of activation rows, into
// columns off.. of Y, which has `wide` columns); and column placement: Y[r, off + j] = X[row0 + r, j]
// (a concatenation along channels, of a range of X's rows).

struct Params {
    n_rows: u32,
    dim: u32,
    off: u32,
    wide: u32,
    row0: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<Act>;
@group(0) @binding(2) var<storage, read> IDX: array<u32>;
@group(0) @binding(3) var<storage, read_write> Y: array<Act>;

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= P.n_rows * P.dim) {
        return;
    }
    let r = i / P.dim;
    Y[r * P.wide + P.off + i % P.dim] = X[IDX[r] * P.dim + i % P.dim];
}

@compute @workgroup_size(256)
fn place_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= P.n_rows * P.dim) {
        return;
    }
    let r = i / P.dim;
    Y[r * P.wide + P.off + i % P.dim] = X[P.row0 * P.dim + i];
}
