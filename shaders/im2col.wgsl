// col[((nc * K + k) * OSP) + o] = x[nc * ISP + source(o, k)] or 0 in the padding.
// Uniforms: WindowParams (engine/src/ops/conv.rs); n = N*C*K*OSP, out the columns.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let osp = g(3u) * g(4u) * g(5u);
    let kl = g(6u) * g(7u) * g(8u);
    let isp = g(0u) * g(1u) * g(2u);
    let o = i % osp;
    let k = (i / osp) % kl;
    let nc = i / (osp * kl);
    let s = window_source(unflatten3(g(4u), g(5u), o), unflatten3(g(7u), g(8u), k));
    var v = 0.0;
    if (s >= 0) { v = {{X}}[u_x() + nc * isp + u32(s)]; }
    {{O}}[u_out() + i] = v;
}
