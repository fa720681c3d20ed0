// Bilinear resize of channels-last images [frames, H, W, C] with align_corners=True (PyTorch's
// F.interpolate): output pixel (oy, ox) samples the input at (oy * sy, ox * sx), where
// sy = (h_in - 1) / (h_out - 1) (0 when h_out == 1), mixing its 4 neighbours as PyTorch does:
// y0 = floor, y1 = min(y0 + 1, h_in - 1), weights (1 - ly, ly) with ly = the fraction.
// Fused epilogue: + a separable positional table (POS, the layout of shaders/conv.wgsl), + ADD.
// One thread per output element.

// Declared by the contract (src/kernels/resize.rs): Params P; X, Y, POS (POS), ADDT (ADD).

@compute @workgroup_size(MAIN_WG_X, MAIN_WG_Y, MAIN_WG_Z)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * MAIN_WG_X;
    if (i >= P.frames * P.h_out * P.w_out * P.c) {
        return;
    }
    let c = i % P.c;
    let p = i / P.c;
    let ox = p % P.w_out;
    let q = p / P.w_out;
    let oy = q % P.h_out;
    let f = q / P.h_out;
    let ry = P.sy * f32(oy);
    let rx = P.sx * f32(ox);
    let y0 = min(u32(ry), P.h_in - 1u);
    let x0 = min(u32(rx), P.w_in - 1u);
    let ly = clamp(ry - f32(y0), 0.0, 1.0);
    let lx = clamp(rx - f32(x0), 0.0, 1.0);
    let y1 = y0 + select(0u, 1u, y0 < P.h_in - 1u);
    let x1 = x0 + select(0u, 1u, x0 < P.w_in - 1u);
    let base = f * P.h_in;
    let v00 = f32(X[((base + y0) * P.w_in + x0) * P.c + c]);
    let v01 = f32(X[((base + y0) * P.w_in + x1) * P.c + c]);
    let v10 = f32(X[((base + y1) * P.w_in + x0) * P.c + c]);
    let v11 = f32(X[((base + y1) * P.w_in + x1) * P.c + c]);
    var v = (1.0 - ly) * ((1.0 - lx) * v00 + lx * v01) + ly * ((1.0 - lx) * v10 + lx * v11);
#ifdef POS
    let hc = P.c / 2u;
    if (c < hc) {
        v += POS[ox * hc + c];
    } else {
        v += POS[(P.w_out + oy) * hc + c - hc];
    }
#endif
#ifdef ADD
    v += f32(ADDT[i]);
#endif
    Y[i] = Act(v);
}
