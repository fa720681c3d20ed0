// Token selection on the GPU so that decoding reads back one u32, not the logits.
// `argmax`: the first index of the largest logit.
// `sample`: temperature, then top-k, then top-p (nucleus), then a draw with the uniform number
// `u` supplied by the caller. The kept set is {p >= tau}: tau_k by bisection on the count, tau_p
// by bisection on the kept mass; the draw walks the kept probabilities in index order.
// One workgroup of WG threads; logits row at element offset `off`.

// Declared by the contract (src/kernels/sample.rs): Params P; L (the logits), OUT.

// One workgroup size for both entries (the shared helpers loop over WG threads).
const WG: u32 = ARGMAX_WG_X;
const_assert SAMPLE_WG_X == WG;
var<workgroup> rf: array<f32, WG>;
var<workgroup> ri: array<u32, WG>;

fn logit(i: u32) -> f32 {
    return f32(L[P.off + i]);
}

// Block-wide maximum with its lowest index.
fn wg_argmax(t: u32) -> u32 {
    var best = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = t; i < P.n; i += WG) {
        let v = logit(i);
        if (v > best) {
            best = v;
            bi = i;
        }
    }
    rf[t] = best;
    ri[t] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            let ov = rf[t + s];
            let oi = ri[t + s];
            if (ov > rf[t] || (ov == rf[t] && oi < ri[t])) {
                rf[t] = ov;
                ri[t] = oi;
            }
        }
        workgroupBarrier();
    }
    let r = ri[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(ARGMAX_WG_X, ARGMAX_WG_Y, ARGMAX_WG_Z)
fn argmax(@builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg_argmax(lid.x);
    if (lid.x == 0u) {
        OUT[0] = r;
    }
}

#ifdef SAMPLE
var<private> mx: f32;

fn prob(i: u32) -> f32 {
    return exp((logit(i) - mx) / P.temperature);
}

// Mass and count of the probabilities >= tau (probabilities relative to the largest, which is 1).
fn mass_at(t: u32, tau: f32) -> f32 {
    var s = 0.0;
    for (var i = t; i < P.n; i += WG) {
        let p = prob(i);
        s += select(0.0, p, p >= tau);
    }
    return wg_sum(t, s);
}

// A threshold that keeps the probabilities >= tau, halfway between the smallest of them and the
// largest below. Bisection leaves tau within 1e-9 of a kept probability, and a GPU may round
// exp((l - mx) / T) differently where it is inlined again, flipping that token (seen on an H200
// at T = 1.3); the slack here and the halfway point make a rounding step harmless.
fn settle(t: u32, tau: f32) -> f32 {
    let cut = tau * (1.0 - 1e-6);
    var kept_min = 2.0;
    var below_max = 0.0;
    for (var i = t; i < P.n; i += WG) {
        let p = prob(i);
        if (p >= cut) {
            kept_min = min(kept_min, p);
        } else {
            below_max = max(below_max, p);
        }
    }
    let a = -wg_max(t, -kept_min);
    let b = wg_max(t, below_max);
    return 0.5 * (a + b);
}

fn count_at(t: u32, tau: f32) -> f32 {
    var c = 0.0;
    for (var i = t; i < P.n; i += WG) {
        c += select(0.0, 1.0, prob(i) >= tau);
    }
    return wg_sum(t, c);
}

@compute @workgroup_size(SAMPLE_WG_X, SAMPLE_WG_Y, SAMPLE_WG_Z)
fn sample(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let best = wg_argmax(t);
    mx = logit(best);
    // top-k: the largest tau that keeps at least k tokens.
    var tau = 0.0;
    if (P.top_k > 0u && P.top_k < P.n) {
        var lo = 0.0;
        var hi = 1.0;
        for (var it = 0u; it < 30u; it++) {
            let mid = 0.5 * (lo + hi);
            if (count_at(t, mid) >= f32(P.top_k)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        tau = settle(t, lo);
    }
    // top-p: the largest tau' >= tau whose kept mass still reaches top_p of the top-k mass.
    if (P.top_p < 1.0) {
        let want_mass = P.top_p * mass_at(t, tau);
        var lo = tau;
        var hi = 1.0000001;
        for (var it = 0u; it < 30u; it++) {
            let mid = 0.5 * (lo + hi);
            if (mass_at(t, mid) >= want_mass) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        tau = settle(t, lo);
    }
    // Draw: chunk sums, a serial prefix over the WG chunks, a serial walk of one chunk.
    let chunk = (P.n + WG - 1u) / WG;
    let c0 = t * chunk;
    let c1 = min(c0 + chunk, P.n);
    var cs = 0.0;
    for (var i = c0; i < c1; i++) {
        let p = prob(i);
        cs += select(0.0, p, p >= tau);
    }
    rf[t] = cs;
    workgroupBarrier();
    if (t == 0u) {
        var total = 0.0;
        for (var j = 0u; j < WG; j++) {
            total += rf[j];
        }
        let goal = P.u * total;
        var acc = 0.0;
        var pick = best;
        var done = false;
        for (var j = 0u; j < WG && !done; j++) {
            if (acc + rf[j] >= goal && rf[j] > 0.0) {
                var run = acc;
                let a0 = j * chunk;
                let a1 = min(a0 + chunk, P.n);
                for (var i = a0; i < a1; i++) {
                    let p = prob(i);
                    if (p >= tau) {
                        pick = i;
                        run += p;
                        if (run >= goal) {
                            break;
                        }
                    }
                }
                done = true;
            }
            acc += rf[j];
        }
        OUT[0] = pick;
    }
}
#endif
