// Strided copy over up to 8 dims: dst[dst_off + idx . dst_strides] = src[src_off + idx . src_strides].
// P: 0 n, 1 rank, 2 src offset, 3 dst offset, 5..13 dims, 13..21 src strides, 21..29 dst strides.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p(0u)) { return; }
    var rem = i;
    var is = p(2u);
    var id = p(3u);
    for (var d = i32(p(1u)) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let c = rem % p(5u + du);
        rem = rem / p(5u + du);
        is = is + c * p(13u + du);
        id = id + c * p(21u + du);
    }
    {{O}}[id] = {{X}}[is];
}
