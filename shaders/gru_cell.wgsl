// The GRU cell's elementwise step (linear_before_reset), one invocation per element of [N, H]:
// z and r from X + HR, n = tanh(x_h + r * hr_h), h = (1 - z) * n + z * h_prev.
// Uniforms: GruCellParams (engine/src/ops/gru_cell.rs).
// sigm and th: shaders/cell_activations.wgsl.

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    if (k >= u_n()) { return; }
    let h = u_hidden();
    let q = (k / h) * 3u * h + k % h;
    let z = sigm({{X}}[u_x() + q] + {{HR}}[u_hr() + q]);
    let r = sigm({{X}}[u_x() + q + h] + {{HR}}[u_hr() + q + h]);
    let n = th({{X}}[u_x() + q + 2u * h] + r * {{HR}}[u_hr() + q + 2u * h]);
    {{H}}[u_h() + k] = (1.0 - z) * n + z * {{HP}}[u_h_prev() + k];
}
