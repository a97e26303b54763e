// The position of each max-pooling window's first maximum, as a flat index into the whole N,C,spatial
// input (ONNX MaxPool's Indices, row-major). One invocation per output.
// Uniforms: PoolParams (engine/src/ops/pool.rs); n = N*C*OSP; kind 1: positions within the plane
// in column-major order.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let osp = g(3u) * g(4u) * g(5u);
    let kl = g(6u) * g(7u) * g(8u);
    let isp = g(0u) * g(1u) * g(2u);
    let o = unflatten3(g(4u), g(5u), i % osp);
    let plane = (i / osp) * isp;
    var best = 0.0;
    var at = -1;
    for (var k = 0u; k < kl; k = k + 1u) {
        let s = window_source(o, unflatten3(g(7u), g(8u), k));
        if (s >= 0) {
            let v = {{X}}[u_x() + plane + u32(s)];
            if (at < 0 || v > best) { best = v; at = s; }
        }
    }
    var p = u32(max(at, 0));
    if (u_kind() == 1u) {
        let c = unflatten3(g(1u), g(2u), p);
        p = (c.z * g(1u) + c.y) * g(0u) + c.x;
    }
    {{O}}[u_out() + i] = f32(plane + p);
}
