// dx[i] = dy[i] * f'(x[i]). Uniforms: UnaryGradParams (engine/src/ops/unary.rs).
fn sigm(x: f32) -> f32 { return select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0); }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let x = {{X}}[u_x() + i];
    let dy = {{DY}}[u_dy() + i];
    {{O}}[u_out() + i] = dy * ({{DERIV}});
}
