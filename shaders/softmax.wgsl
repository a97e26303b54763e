// Softmax / log-softmax along an axis of length L with element step `inner`; one invocation per
// (outer, inner) pair. Uniforms: SoftmaxParams (engine/src/ops/softmax.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= u_rows()) { return; }
    let len = u_len();
    let inner = u_inner();
    let base = (r / inner) * len * inner + r % inner;
    var mx = -3.402823e38;
    for (var t = 0u; t < len; t = t + 1u) { mx = max(mx, {{X}}[u_x() + base + t * inner]); }
    var sum = 0.0;
    for (var t = 0u; t < len; t = t + 1u) { sum = sum + exp({{X}}[u_x() + base + t * inner] - mx); }
    for (var t = 0u; t < len; t = t + 1u) {
        let x = {{X}}[u_x() + base + t * inner] - mx;
        {{O}}[u_out() + base + t * inner] = {{EXPR}};
    }
}
