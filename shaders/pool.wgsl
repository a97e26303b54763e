// Pooling, one invocation per output. Uniforms: PoolParams (engine/src/ops/pool.rs); n = N*C*OSP,
// kind 0 max, 1 average without padding, 2 average counting padding.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let osp = g(3u) * g(4u) * g(5u);
    let kl = g(6u) * g(7u) * g(8u);
    let isp = g(0u) * g(1u) * g(2u);
    let o = unflatten3(g(4u), g(5u), i % osp);
    let base = u_x() + (i / osp) * isp;
    let kind = u_kind();
    var acc = 0.0;
    if (kind == 0u) { acc = -3.402823e38; }
    var count = 0u;
    var padded = 0u;
    for (var k = 0u; k < kl; k = k + 1u) {
        let kk = unflatten3(g(7u), g(8u), k);
        let s = window_source(o, kk);
        if (s >= 0) {
            let v = {{X}}[base + u32(s)];
            if (kind == 0u) { acc = max(acc, v); } else { acc = acc + v; }
            count = count + 1u;
        } else if (window_in_padded(o, kk)) {
            padded = padded + 1u;
        }
    }
    if (kind == 1u) { acc = acc / f32(max(count, 1u)); }
    if (kind == 2u) { acc = acc / f32(max(count + padded, 1u)); }
    {{O}}[u_out() + i] = acc;
}
