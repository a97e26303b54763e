// out[i] = a[ia] (op) b[ib] with broadcast strides over up to 8 dims.
// P: 0 n, 1 rank, 2 a offset, 3 b offset, 4 out offset, 5..13 dims, 13..21 a strides, 21..29 b strides.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p(0u)) { return; }
    var rem = i;
    var ia = p(2u);
    var ib = p(3u);
    for (var d = i32(p(1u)) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let c = rem % p(5u + du);
        rem = rem / p(5u + du);
        ia = ia + c * p(13u + du);
        ib = ib + c * p(21u + du);
    }
    let a = {{A}}[ia];
    let b = {{B}}[ib];
    {{O}}[p(4u) + i] = {{EXPR}};
}
