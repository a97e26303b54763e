// Sum over the reduced dims for each output element, times `scale` (1 or 1/count).
// P: 0 n out, 1 kept rank, 2 reduced rank, 3 reduced count, 4 x offset, 5 out offset, 6 scale (f32),
//    7..15 kept dims, 15..23 kept strides, 23..31 reduced dims, 31..39 reduced strides.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p(0u)) { return; }
    var rem = i;
    var base = p(4u);
    for (var d = i32(p(1u)) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        base = base + (rem % p(7u + du)) * p(15u + du);
        rem = rem / p(7u + du);
    }
    var acc = 0.0;
    for (var r = 0u; r < p(3u); r = r + 1u) {
        var rr = r;
        var off = base;
        for (var d = i32(p(2u)) - 1; d >= 0; d = d - 1) {
            let du = u32(d);
            off = off + (rr % p(23u + du)) * p(31u + du);
            rr = rr / p(23u + du);
        }
        acc = acc + {{X}}[off];
    }
    {{O}}[p(5u) + i] = acc * pf(6u);
}
