// The LSTM cell's elementwise step, one invocation per element of [N, H]: gates from the
// pre-activations P ([N, 4H], blocks i, o, f, c), then c = f * c_prev + i * g and h = o * tanh(c).
// Uniforms: LstmCellParams (engine/src/ops/lstm_cell.rs).
// sigm and th: shaders/cell_activations.wgsl.

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    if (k >= u_n()) { return; }
    let h = u_hidden();
    let p = u_pre() + (k / h) * 4u * h + k % h;
    let i = sigm({{P}}[p]);
    let o = sigm({{P}}[p + h]);
    let f = sigm({{P}}[p + 2u * h]);
    let g = th({{P}}[p + 3u * h]);
    let c = f * {{CP}}[u_c_prev() + k] + i * g;
    {{C}}[u_c() + k] = c;
    {{H}}[u_h() + k] = o * th(c);
}
