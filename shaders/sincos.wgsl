// Sine and cosine of an f32 angle to about 1e-7, on every adapter: Cody-Waite reduction by pi/2
// (exact for the angles of 128k-token contexts) and Cephes' minimax polynomials on [-pi/4, pi/4].
// Native sin/cos are not used: Vulkan allows them an absolute error of 2^-11 (SwiftShader shows it).
fn sincos(a: f32) -> vec2<f32> {
    let n = round(a * 0.63661977236758134);
    let r = ((a - n * 1.5703125) - n * 4.837512969970703125e-4) - n * 7.54978995489188216e-8;
    let z = r * r;
    let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
    let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
    let q = i32(n) & 3;
    if (q == 0) {
        return vec2<f32>(s, c);
    }
    if (q == 1) {
        return vec2<f32>(c, -s);
    }
    if (q == 2) {
        return vec2<f32>(-s, -c);
    }
    return vec2<f32>(-c, s);
}
