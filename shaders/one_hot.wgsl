// OneHot: out[(o * depth + c) * inner + r] = values[1] if idx[o * inner + r] (wrapped) == c, else
// values[0]. Uniforms: OneHotParams (engine/src/ops/one_hot.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let r = i % u_inner();
    let t = i / u_inner();
    let c = i32(t % u_depth());
    let o = t / u_depth();
    let hot = wrap_index({{I}}[u_idx() + o * u_inner() + r], u_depth()) == c;
    {{O}}[u_out() + i] = select({{V}}[u_vals()], {{V}}[u_vals() + 1u], hot);
}
