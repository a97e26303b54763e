// The gradient of the GRU cell (shaders/gru_cell.wgsl), one invocation per element of [N, H]:
// the input and recurrent projections' gradients (z, r, h blocks) and the previous state's.
// Uniforms: GruCellGradParams (engine/src/ops/gru_cell.rs).
// sigm and th: shaders/cell_activations.wgsl.

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    if (k >= u_n()) { return; }
    let h = u_hidden();
    let q = (k / h) * 3u * h + k % h;
    let z = sigm({{X}}[u_x() + q] + {{HR}}[u_hr() + q]);
    let r = sigm({{X}}[u_x() + q + h] + {{HR}}[u_hr() + q + h]);
    let hh = {{HR}}[u_hr() + q + 2u * h];
    let n = th({{X}}[u_x() + q + 2u * h] + r * hh);
    let d = {{DH}}[u_dh() + k];
    let hp = {{HP}}[u_h_prev() + k];
    let dn_pre = d * (1.0 - z) * (1.0 - n * n);
    let dz_pre = d * (hp - n) * z * (1.0 - z);
    let dr_pre = dn_pre * hh * r * (1.0 - r);
    {{DX}}[u_dx() + q] = dz_pre;
    {{DX}}[u_dx() + q + h] = dr_pre;
    {{DX}}[u_dx() + q + 2u * h] = dn_pre;
    {{DHR}}[u_dhr() + q] = dz_pre;
    {{DHR}}[u_dhr() + q + h] = dr_pre;
    {{DHR}}[u_dhr() + q + 2u * h] = dn_pre * r;
    {{DHP}}[u_dh_prev() + k] = d * z;
}
