// out[i] = c[ic] != 0 ? x[ix] : y[iy], all three broadcast over up to 8 dims.
// Uniforms: WhereParams (engine/src/ops/where_op.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    var rem = i;
    var ic = u_c();
    var ix = u_x();
    var iy = u_y();
    for (var d = i32(u_rank()) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let k = rem % u_dims(du);
        rem = rem / u_dims(du);
        ic = ic + k * u_c_strides(du);
        ix = ix + k * u_x_strides(du);
        iy = iy + k * u_y_strides(du);
    }
    {{O}}[u_out() + i] = select({{Y}}[iy], {{X}}[ix], {{C}}[ic] != 0.0);
}
