// Strided copy over up to 8 dims: dst[dst_off + idx . dst_strides] = src[src_off + idx . src_strides].
// Uniforms: CopyParams (engine/src/wgpu_exec/lower.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    var rem = i;
    var is = u_src();
    var id = u_dst();
    for (var d = i32(u_rank()) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let c = rem % u_dims(du);
        rem = rem / u_dims(du);
        is = is + c * u_src_strides(du);
        id = id + c * u_dst_strides(du);
    }
    {{O}}[id] = {{X}}[is];
}
