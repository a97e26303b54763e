// The adjoint of im2col, as a gather: each input element sums the columns that read it.
// Uniforms: WindowParams (engine/src/ops/conv.rs); n = N*C*ISP, x the columns.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let isp = g(0u) * g(1u) * g(2u);
    let osp = g(3u) * g(4u) * g(5u);
    let kl = g(6u) * g(7u) * g(8u);
    let nc = i / isp;
    let pos = unflatten3(g(1u), g(2u), i % isp);
    var acc = 0.0;
    for (var k = 0u; k < kl; k = k + 1u) {
        let kk = unflatten3(g(7u), g(8u), k);
        let o = window_output_of(pos, kk);
        if (o >= 0) { acc = acc + {{X}}[u_x() + (nc * kl + k) * osp + u32(o)]; }
    }
    {{O}}[u_out() + i] = acc;
}
