// ScatterND: out = data, then for each index tuple t in order, the slice it names is combined with
// updates[t]. One invocation per output element walks the tuples in [start, start + count); the
// first chunk starts from data, later ones from out. Uniforms: ScatterNdParams (engine/src/ops/scatter_nd.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat_index(gid, nwg);
    if (e >= u_n()) { return; }
    var v = 0.0;
    if (u_first() != 0u) { v = {{X}}[u_data() + e]; } else { v = {{O}}[u_out() + e]; }
    let s = e % u_inner();
    let p = i32(e / u_inner());
    for (var t = u_start(); t < u_start() + u_count(); t = t + 1u) {
        var q = 0;
        for (var k = 0u; k < u_m(); k = k + 1u) {
            let c = wrap_index({{I}}[u_idx() + t * u_m() + k], u_dims(k));
            if (c < 0) { q = -1; break; }
            q = q + c * i32(u_pstrides(k));
        }
        if (q == p) { v = scatter_reduce(v, {{U}}[u_upd() + t * u_inner() + s], u_reduction()); }
    }
    {{O}}[u_out() + e] = v;
}
