// Inference batch normalisation over axis 1. P: 0 n, 1 channels, 2 inner (elements per channel
// and sample), 3 x, 4 scale, 5 bias, 6 mean, 7 var, 8 out offsets, 9 epsilon (f32).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p(0u)) { return; }
    let c = (i / p(2u)) % p(1u);
    let x = {{X}}[p(3u) + i];
    let inv = inverseSqrt({{VAR}}[p(7u) + c] + pf(9u));
    {{O}}[p(8u) + i] = (x - {{MEAN}}[p(6u) + c]) * inv * {{SCALE}}[p(4u) + c] + {{BIAS}}[p(5u) + c];
}
