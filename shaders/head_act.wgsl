// Output activations of a dense prediction head (VGGT heads/head_act.py `activate_head`): of a
// pixel's C channels the first C-1 are a value (depth, a 3D point) and the last a confidence.
// One thread per pixel. Outputs are f32 (exp easily leaves f16's range) and go to buffers that hold
// the whole sequence, at pixel offset `out_off`: V[(out_off + p) * (C-1) + j], CONF[out_off + p].
// Value activation flags: PTS_EXP, PTS_INV_LOG (sign(x) * expm1(|x|)), PTS_XY_INV_LOG, PTS_NORM,
// PTS_NORM_EXP, PTS_RELU, PTS_SIGMOID, PTS_LINEAR. Confidence: CONF_EXPP1 (1 + exp), CONF_EXPP0
// (exp), CONF_SIGMOID.

// Declared by the contract (src/kernels/head_act.rs): Params P; X, V, CONF.

// exp(x) - 1 without cancellation near 0 (Taylor series below |x| = 0.1).
fn expm1_f32(x: f32) -> f32 {
    if (abs(x) < 0.1) {
        return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0)))));
    }
    return exp(x) - 1.0;
}

fn inv_log(x: f32) -> f32 {
    return sign(x) * expm1_f32(abs(x));
}

@compute @workgroup_size(MAIN_WG_X, MAIN_WG_Y, MAIN_WG_Z)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = gid.x + gid.y * nwg.x * MAIN_WG_X;
    if (p >= P.pixels) {
        return;
    }
    let nv = P.c - 1u;
    let base = p * P.c;
    let ob = (P.out_off + p) * nv;
#ifdef PTS_NORM|PTS_NORM_EXP
    var ss = 0.0;
    for (var j = 0u; j < nv; j++) {
        let x = f32(X[base + j]);
        ss += x * x;
    }
    let nrm = sqrt(ss);
#endif
#ifdef PTS_XY_INV_LOG
    let z = inv_log(f32(X[base + 2u]));
#endif
    for (var j = 0u; j < nv; j++) {
        let x = f32(X[base + j]);
        var y = x;
#ifdef PTS_EXP
        y = exp(x);
#endif
#ifdef PTS_INV_LOG
        y = inv_log(x);
#endif
#ifdef PTS_XY_INV_LOG
        y = select(z, x * z, j < 2u);
#endif
#ifdef PTS_NORM
        y = x / nrm;
#endif
#ifdef PTS_NORM_EXP
        let d = max(nrm, 1e-8);
        y = x / d * expm1_f32(d);
#endif
#ifdef PTS_RELU
        y = max(x, 0.0);
#endif
#ifdef PTS_SIGMOID
        y = 1.0 / (1.0 + exp(-x));
#endif
#ifdef PTS_LINEAR
        y = x;
#endif
        V[ob + j] = y;
    }
    let c = f32(X[base + nv]);
#ifdef CONF_EXPP1
    CONF[P.out_off + p] = 1.0 + exp(c);
#endif
#ifdef CONF_EXPP0
    CONF[P.out_off + p] = exp(c);
#endif
#ifdef CONF_SIGMOID
    CONF[P.out_off + p] = 1.0 / (1.0 + exp(-c));
#endif
}
