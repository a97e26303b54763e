// Gradient of pooling as a gather over the windows that contain each input element.
// Uniforms: PoolGradParams (engine/src/ops/pool.rs); n = N*C*ISP, kind as in pool.wgsl.
// Max routes dy to the first maximum of each window.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let isp = g(0u) * g(1u) * g(2u);
    let osp = g(3u) * g(4u) * g(5u);
    let kl = g(6u) * g(7u) * g(8u);
    let nc = i / isp;
    let me = i % isp;
    let pos = unflatten3(g(1u), g(2u), me);
    let base = u_x() + nc * isp;
    let kind = u_kind();
    var acc = 0.0;
    for (var k = 0u; k < kl; k = k + 1u) {
        let o = window_output_of(pos, unflatten3(g(7u), g(8u), k));
        if (o < 0) { continue; }
        let op = unflatten3(g(4u), g(5u), u32(o));
        let dy = {{DY}}[u_dy() + nc * osp + u32(o)];
        if (kind == 0u) {
            var best = -1;
            var bv = 0.0;
            for (var k2 = 0u; k2 < kl; k2 = k2 + 1u) {
                let s = window_source(op, unflatten3(g(7u), g(8u), k2));
                if (s >= 0) {
                    let v = {{X}}[base + u32(s)];
                    if (best < 0 || v > bv) { best = s; bv = v; }
                }
            }
            if (best == i32(me)) { acc = acc + dy; }
        } else {
            var count = 0u;
            for (var k2 = 0u; k2 < kl; k2 = k2 + 1u) {
                let kk2 = unflatten3(g(7u), g(8u), k2);
                if (window_source(op, kk2) >= 0 || (kind == 2u && window_in_padded(op, kk2))) { count = count + 1u; }
            }
            acc = acc + dy / f32(max(count, 1u));
        }
    }
    {{O}}[u_out() + i] = acc;
}
