// Embedding gather from a packed (f16 / q8 / q4) table: Y[t, :] = W[ids[t], :]. A table split by
// rows is gathered part by part: a part holds rows row0 .. row0 + vocab and writes only those ids.

struct Params {
    n_tok: u32,
    dim: u32,
    KP: u32,
    soff: u32,
    vocab: u32,
    row0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> IDS: array<u32>;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read_write> Y: array<Act>;

@compute @workgroup_size(256)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
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
    let w = load_w4(row, d0, P.KP, P.soff);
    for (var j = 0u; j < 4u; j++) {
        if (d0 + j < P.dim) {
            Y[t * P.dim + d0 + j] = Act(w[j]);
        }
    }
}
