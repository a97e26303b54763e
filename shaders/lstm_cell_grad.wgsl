// The gradient of the LSTM cell (shaders/lstm_cell.wgsl), one invocation per element of [N, H]:
// the four gate pre-activations' gradients and the previous cell state's, from dh and dc.
// Uniforms: LstmCellGradParams (engine/src/ops/lstm_cell.rs).
// sigm and th: shaders/cell_activations.wgsl.

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    if (k >= u_n()) { return; }
    let h = u_hidden();
    let q = (k / h) * 4u * h + k % h;
    let p = u_pre() + q;
    let i = sigm({{P}}[p]);
    let o = sigm({{P}}[p + h]);
    let f = sigm({{P}}[p + 2u * h]);
    let g = th({{P}}[p + 3u * h]);
    let cp = {{CP}}[u_c_prev() + k];
    let t = th(f * cp + i * g);
    let dh = {{DH}}[u_dh() + k];
    let dct = {{DC}}[u_dc() + k] + dh * o * (1.0 - t * t);
    let d = u_d_pre() + q;
    {{DP}}[d] = dct * g * i * (1.0 - i);
    {{DP}}[d + h] = dh * t * o * (1.0 - o);
    {{DP}}[d + 2u * h] = dct * cp * f * (1.0 - f);
    {{DP}}[d + 3u * h] = dct * i * (1.0 - g * g);
    {{DCP}}[u_d_c_prev() + k] = dct * f;
}
