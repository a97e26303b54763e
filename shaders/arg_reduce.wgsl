// ArgMax / ArgMin along an axis: out[o * inner + r] is the position k of the largest (smallest)
// x[(o * len + k) * inner + r], the first of ties (the last with select_last).
// Uniforms: ArgReduceParams (engine/src/ops/arg_reduce.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let r = i % u_inner();
    let o = i / u_inner();
    let base = u_x() + o * u_len() * u_inner() + r;
    var best = {{X}}[base];
    var at = 0u;
    for (var k = 1u; k < u_len(); k = k + 1u) {
        var v = {{X}}[base + k * u_inner()];
        if (u_is_max() == 0u) { v = -v; }
        var b = best;
        if (u_is_max() == 0u) { b = -b; }
        if (v > b || (u_select_last() != 0u && v == b)) {
            best = {{X}}[base + k * u_inner()];
            at = k;
        }
    }
    {{O}}[u_out() + i] = f32(at);
}
