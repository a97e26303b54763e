// out[i] = f(x[i]).  P: 0 n, 1 x offset, 2 out offset.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p(0u)) { return; }
    let x = {{X}}[p(1u) + i];
    {{O}}[p(2u) + i] = {{EXPR}};
}
