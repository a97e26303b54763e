// Softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy); one invocation per row.
// Uniforms: SoftmaxGradParams (engine/src/ops/softmax.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= u_rows()) { return; }
    let len = u_len();
    let inner = u_inner();
    let base = (r / inner) * len * inner + r % inner;
    var acc = 0.0;
    for (var t = 0u; t < len; t = t + 1u) {
        let dy = {{DY}}[u_dy() + base + t * inner];
        if (u_log() == 1u) { acc = acc + dy; } else { acc = acc + dy * {{Y}}[u_y() + base + t * inner]; }
    }
    for (var t = 0u; t < len; t = t + 1u) {
        let y = {{Y}}[u_y() + base + t * inner];
        let dy = {{DY}}[u_dy() + base + t * inner];
        var dx = y * (dy - acc);
        if (u_log() == 1u) { dx = dy - exp(y) * acc; }
        {{O}}[u_out() + base + t * inner] = dx;
    }
}
