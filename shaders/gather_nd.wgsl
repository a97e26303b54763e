// GatherND: output element (tuple t, inner s) reads data at the batch of t, the m coordinates of
// index tuple t, and s (0 where a coordinate is out of range).
// Uniforms: GatherNdParams (engine/src/ops/gather_nd.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let s = i % u_inner();
    let t = i / u_inner();
    var off = u_data() + (t / u_tuples_per_batch()) * u_batch_stride() + s;
    var ok = true;
    for (var k = 0u; k < u_m(); k = k + 1u) {
        let c = wrap_index({{I}}[u_idx() + t * u_m() + k], u_dims(k));
        if (c < 0) { ok = false; } else { off = off + u32(c) * u_strides(k); }
    }
    var v = 0.0;
    if (ok) { v = {{X}}[off]; }
    {{O}}[u_out() + i] = v;
}
