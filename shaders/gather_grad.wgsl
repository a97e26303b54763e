// The gradient of Gather (a scatter-add, deterministic): out[(o * dim + k) * inner + r] sums
// dy[(o * nidx + j) * inner + r] over the j in [start, start + count) with idx[j] == k; the first
// chunk overwrites, later ones add. Uniforms: GatherGradParams (engine/src/ops/gather.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let r = i % u_inner();
    let t = i / u_inner();
    let k = i32(t % u_dim());
    let o = t / u_dim();
    var acc = 0.0;
    for (var j = u_start(); j < u_start() + u_count(); j = j + 1u) {
        if (wrap_index({{I}}[u_idx() + j], u_dim()) == k) {
            acc = acc + {{DY}}[u_dy() + (o * u_nidx() + j) * u_inner() + r];
        }
    }
    if (u_accumulate() != 0u) { acc = acc + {{O}}[u_out() + i]; }
    {{O}}[u_out() + i] = acc;
}
