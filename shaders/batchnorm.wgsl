// Inference batch normalisation over axis 1 (`inner`: elements per channel and sample).
// Uniforms: BatchNormParams (engine/src/ops/batch_norm.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let c = (i / u_inner()) % u_channels();
    let x = {{X}}[u_x() + i];
    let inv = inverseSqrt({{VAR}}[u_var() + c] + u_epsilon());
    {{O}}[u_out() + i] = (x - {{MEAN}}[u_mean() + c]) * inv * {{SCALE}}[u_scale() + c] + {{BIAS}}[u_bias() + c];
}
