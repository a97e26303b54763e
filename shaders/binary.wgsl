// out[i] = a[ia] (op) b[ib] with broadcast strides over up to 8 dims.
// Uniforms: BinaryParams (engine/src/ops/binary.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    var rem = i;
    var ia = u_a();
    var ib = u_b();
    for (var d = i32(u_rank()) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let c = rem % u_dims(du);
        rem = rem / u_dims(du);
        ia = ia + c * u_a_strides(du);
        ib = ib + c * u_b_strides(du);
    }
    let a = {{A}}[ia];
    let b = {{B}}[ib];
    {{O}}[u_out() + i] = {{EXPR}};
}
