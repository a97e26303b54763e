// Gather along an axis: out[(o * nidx + j) * inner + r] = data[(o * dim + idx[j]) * inner + r]
// (0 where the index is out of range). Uniforms: GatherParams (engine/src/ops/gather.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let r = i % u_inner();
    let t = i / u_inner();
    let j = t % u_nidx();
    let o = t / u_nidx();
    let k = wrap_index({{I}}[u_idx() + j], u_dim());
    var v = 0.0;
    if (k >= 0) { v = {{X}}[u_data() + (o * u_dim() + u32(k)) * u_inner() + r]; }
    {{O}}[u_out() + i] = v;
}
