// Repetition penalty in place (as transformers applies it): for each listed token id (unique),
// a logit below zero is multiplied by the penalty, any other divided by it.

// Declared by the contract (src/kernels/sample.rs): Params P; L (the logits, in place), IDS.

@compute @workgroup_size(PENALIZE_WG_X, PENALIZE_WG_Y, PENALIZE_WG_Z)
fn penalize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_ids) {
        return;
    }
    let j = P.off + IDS[i];
    let v = f32(L[j]);
    L[j] = Act(select(v / P.penalty, v * P.penalty, v < 0.0));
}
