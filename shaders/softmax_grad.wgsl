// Softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy); one invocation per row.
// P: 0 rows, 1 L, 2 inner, 3 y offset, 4 dy offset, 5 out offset, 6 log (0/1).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= p(0u)) { return; }
    let len = p(1u);
    let inner = p(2u);
    let base = (r / inner) * len * inner + r % inner;
    var acc = 0.0;
    for (var t = 0u; t < len; t = t + 1u) {
        let dy = {{DY}}[p(4u) + base + t * inner];
        if (p(6u) == 1u) { acc = acc + dy; } else { acc = acc + dy * {{Y}}[p(3u) + base + t * inner]; }
    }
    for (var t = 0u; t < len; t = t + 1u) {
        let y = {{Y}}[p(3u) + base + t * inner];
        let dy = {{DY}}[p(4u) + base + t * inner];
        var dx = y * (dy - acc);
        if (p(6u) == 1u) { dx = dy - exp(y) * acc; }
        {{O}}[p(5u) + base + t * inner] = dx;
    }
}
