// Repetition penalty in place (as transformers applies it): for each listed token id (unique),
// a logit below zero is multiplied by the penalty, any other divided by it.

struct Params {
    n_ids: u32,
    off: u32,
    penalty: f32,
    _p: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> L: array<Act>;
@group(0) @binding(2) var<storage, read> IDS: array<u32>;

@compute @workgroup_size(256)
fn penalize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_ids) {
        return;
    }
    let j = P.off + IDS[i];
    let v = f32(L[j]);
    L[j] = Act(select(v / P.penalty, v * P.penalty, v < 0.0));
}
