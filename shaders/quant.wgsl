// Unpacking of packed weight matrices (layout documented in src/weights/quant.rs). The including
// shader declares `W: array<Words>`. Rows are padded to `kp` columns (a multiple of 32).
// With W_MULTI (the fused decode GEMVs) rows come from up to three matrices W, W2, W3 of the same
// width: `w_sel` (set per thread by the including shader) says which one is read.

// With W4 (the q4 / q8 GEMV) the matrices are declared as vec4<u32>s: `w_quad` reads four code
// words in one 16-byte load, as GPUs read best; `w_word` one component (storage buffers are
// sized to a multiple of 16 bytes).
#ifdef W4
alias Words = vec4<u32>;
#else
alias Words = u32;
#endif

#ifdef W_MULTI
var<private> w_sel: u32;

fn w_words(i: u32) -> Words {
    if (w_sel == 1u) {
        return W2[i];
    }
    if (w_sel == 2u) {
        return W3[i];
    }
    return W[i];
}
#else
fn w_words(i: u32) -> Words {
    return W[i];
}
#endif

// Words 4q..4q+3: a q4 block is quad `blk`, a q8 block quads 2 blk and 2 blk + 1.
#ifdef W4
fn w_word(i: u32) -> u32 {
    return w_words(i >> 2u)[i & 3u];
}

fn w_quad(q: u32) -> vec4<u32> {
    return w_words(q);
}
#else
fn w_word(i: u32) -> u32 {
    return w_words(i);
}

fn w_quad(q: u32) -> vec4<u32> {
    return vec4<u32>(w_word(4u * q), w_word(4u * q + 1u), w_word(4u * q + 2u), w_word(4u * q + 3u));
}
#endif

fn w_scale(blk: u32, soff: u32) -> f32 {
    let v = unpack2x16float(w_word(soff + blk / 2u));
    return select(v.x, v.y, (blk & 1u) == 1u);
}

// Four consecutive weights of row `row` starting at column `k0` (a multiple of 4).
fn load_w4(row: u32, k0: u32, kp: u32, soff: u32) -> vec4<f32> {
#ifdef W_F32
    let i = row * kp + k0;
    return vec4<f32>(bitcast<f32>(w_word(i)), bitcast<f32>(w_word(i + 1u)), bitcast<f32>(w_word(i + 2u)), bitcast<f32>(w_word(i + 3u)));
#endif
#ifdef W_F16
    let i = (row * kp + k0) / 2u;
    let a = unpack2x16float(w_word(i));
    let b = unpack2x16float(w_word(i + 1u));
    return vec4<f32>(a.x, a.y, b.x, b.y);
#endif
#ifdef W_Q8
    let blk = row * (kp / 32u) + k0 / 32u;
    let w = bitcast<i32>(w_word(blk * 8u + (k0 % 32u) / 4u));
    let q = vec4<i32>(extractBits(w, 0u, 8u), extractBits(w, 8u, 8u), extractBits(w, 16u, 8u), extractBits(w, 24u, 8u));
    return w_scale(blk, soff) * vec4<f32>(q);
#endif
#ifdef W_Q4
    let blk = row * (kp / 32u) + k0 / 32u;
    let w = w_word(blk * 4u + (k0 % 32u) / 8u);
    let sh = (k0 % 8u) * 4u;
    let q = vec4<u32>(extractBits(w, sh, 4u), extractBits(w, sh + 4u, 4u), extractBits(w, sh + 8u, 4u), extractBits(w, sh + 12u, 4u));
    return w_scale(blk, soff) * (vec4<f32>(q) - vec4<f32>(8.0));
#endif
}

// One weight at any column of row `row` (for gathers across a row, as the convolutions do).
fn load_w1(row: u32, col: u32, kp: u32, soff: u32) -> f32 {
#ifdef W_F32
    return bitcast<f32>(w_word(row * kp + col));
#endif
#ifdef W_F16
    let i = row * kp + col;
    let v = unpack2x16float(w_word(i / 2u));
    return select(v.x, v.y, (i & 1u) == 1u);
#endif
#ifdef W_Q8
    let blk = row * (kp / 32u) + col / 32u;
    let e = col % 32u;
    let w = bitcast<i32>(w_word(blk * 8u + e / 4u));
    return w_scale(blk, soff) * f32(extractBits(w, (e % 4u) * 8u, 8u));
#endif
#ifdef W_Q4
    let blk = row * (kp / 32u) + col / 32u;
    let e = col % 32u;
    let w = w_word(blk * 4u + e / 8u);
    return w_scale(blk, soff) * (f32(extractBits(w, (e % 8u) * 4u, 4u)) - 8.0);
#endif
}
