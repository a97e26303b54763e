// ScatterElements: out = data, then for each update u in order, out[coords(u) with the axis
// coordinate replaced by idx[u]] is combined with upd[u]. One invocation per output element walks
// the only updates that can land on it (those sharing its coordinates off the axis), in order.
// Uniforms: ScatterElementsParams (engine/src/ops/scatter_elements.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat_index(gid, nwg);
    if (e >= u_n()) { return; }
    var v = {{X}}[u_data() + e];
    var rem = e;
    var base = 0u;
    var inside = true;
    var want = 0;
    for (var d = i32(u_rank()) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let c = rem % u_data_dims(du);
        rem = rem / u_data_dims(du);
        if (du == u_axis()) {
            want = i32(c);
        } else {
            if (c >= u_idx_dims(du)) { inside = false; }
            base = base + c * u_idx_strides(du);
        }
    }
    if (inside) {
        let along = u_idx_dims(u_axis());
        for (var t = 0u; t < along; t = t + 1u) {
            let u = base + t * u_idx_strides(u_axis());
            if (wrap_index({{I}}[u_idx() + u], u_dim()) == want) {
                v = scatter_reduce(v, {{U}}[u_upd() + u], u_reduction());
            }
        }
    }
    {{O}}[u_out() + e] = v;
}
