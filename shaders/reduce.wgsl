// Sum over the reduced dims, in chunks: invocation i handles output o = i / chunks and the reduced
// indices [c * chunk_len, min(count, (c + 1) * chunk_len)) with c = i % chunks, writing
// out[o * chunks + c] = scale * partial sum. With chunks = 1 this is the whole reduction. Chunking
// keeps every invocation's loop short: lavapipe cuts loops past 65,535 iterations per invocation.
// P: 0 n (outputs * chunks), 1 kept rank, 2 reduced rank, 3 reduced count, 4 x offset, 5 out offset,
//    6 scale (f32), 7..15 kept dims, 15..23 kept strides, 23..31 reduced dims, 31..39 reduced strides,
//    39 chunks, 40 chunk length.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p(0u)) { return; }
    let chunks = p(39u);
    let chunk_len = p(40u);
    var rem = i / chunks;
    let c = i % chunks;
    var base = p(4u);
    for (var d = i32(p(1u)) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        base = base + (rem % p(7u + du)) * p(15u + du);
        rem = rem / p(7u + du);
    }
    let start = c * chunk_len;
    let end = min(p(3u), start + chunk_len);
    var acc = 0.0;
    for (var r = start; r < end; r = r + 1u) {
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
