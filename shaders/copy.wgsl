// Streaming copy: Y[i] = X[i] for i < P.n4, four 32-bit words (one vec4<u32>) at a time, in a
// grid-stride loop. Each pass of a thread issues COPY_ITEMS loads (one vec4 each, `threads`
// apart, so a warp / wavefront reads contiguous 16-byte words) into registers before the
// matching stores, so that COPY_ITEMS loads are in flight per thread; the grid (P.threads =
// workgroups x COPY_WG_X, a launch choice) then steps by threads x COPY_ITEMS until the whole
// buffer is copied. Any grid size and any n4 are covered (guards on every item). Words past the
// last whole vec4 are copied by the launcher (src/kernels/copy.rs). The bandwidth probe of
// `bench` times this kernel over several grid sizes and COPY_ITEMS (1, 2, 4, 8).

// Declared by the contract (src/kernels/copy.rs): Params P; X, Y (array<vec4<u32>>). COPY_ITEMS
// is a constant of the variant.

@compute @workgroup_size(COPY_WG_X, COPY_WG_Y, COPY_WG_Z)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>) {
    let threads = P.threads;
    let step = threads * COPY_ITEMS;
    var v: array<vec4<u32>, COPY_ITEMS>;
    for (var base = gid.x; base < P.n4; base += step) {
        for (var k = 0u; k < COPY_ITEMS; k++) {
            let i = base + k * threads;
            if (i < P.n4) {
                v[k] = X[i];
            }
        }
        for (var k = 0u; k < COPY_ITEMS; k++) {
            let i = base + k * threads;
            if (i < P.n4) {
                Y[i] = v[k];
            }
        }
    }
}
