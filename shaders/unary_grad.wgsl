// dx[i] = dy[i] * f'(x[i]).  P: 0 n, 1 x offset, 2 dy offset, 3 out offset.
fn sigm(x: f32) -> f32 { return select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0); }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p(0u)) { return; }
    let x = {{X}}[p(1u) + i];
    let dy = {{DY}}[p(2u) + i];
    {{O}}[p(3u) + i] = dy * ({{DERIV}});
}
