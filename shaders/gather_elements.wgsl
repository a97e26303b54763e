// GatherElements: out[i] = data[coords(i) with the axis coordinate replaced by idx[i]] (0 where the
// index is out of range). Uniforms: GatherElementsParams (engine/src/ops/gather_elements.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    var rem = i;
    var off = u_data();
    for (var d = i32(u_rank()) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let c = rem % u_idx_dims(du);
        rem = rem / u_idx_dims(du);
        if (du != u_axis()) { off = off + c * u_data_strides(du); }
    }
    let k = wrap_index({{I}}[u_idx() + i], u_dim());
    var v = 0.0;
    if (k >= 0) { v = {{X}}[off + u32(k) * u_data_strides(u_axis())]; }
    {{O}}[u_out() + i] = v;
}
