// Softmax / log-softmax along an axis of length L with element step `inner`; one invocation per
// (outer, inner) pair. P: 0 outer*inner, 1 L, 2 inner, 3 x offset, 4 out offset.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= p(0u)) { return; }
    let len = p(1u);
    let inner = p(2u);
    let base = (r / inner) * len * inner + r % inner;
    var mx = -3.402823e38;
    for (var t = 0u; t < len; t = t + 1u) { mx = max(mx, {{X}}[p(3u) + base + t * inner]); }
    var sum = 0.0;
    for (var t = 0u; t < len; t = t + 1u) { sum = sum + exp({{X}}[p(3u) + base + t * inner] - mx); }
    for (var t = 0u; t < len; t = t + 1u) {
        let x = {{X}}[p(3u) + base + t * inner] - mx;
        {{O}}[p(4u) + base + t * inner] = {{EXPR}};
    }
}
