// Workgroup-wide sum and maximum over RED_N threads (a power of two the launcher sets), through
// workgroup memory: no subgroups, so that every WebGPU adapter runs them. Call in uniform
// control flow; every thread gets the result.
#ifdef REDUCE
var<workgroup> red: array<f32, RED_N>;

fn wg_sum(t: u32, v: f32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = RED_N / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn wg_max(t: u32, v: f32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = RED_N / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] = max(red[t], red[t + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}
#endif
