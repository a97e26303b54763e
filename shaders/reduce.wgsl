// A reduction (INIT, then acc = COMBINE(acc, v)) over the reduced dims, in chunks: invocation i handles output o = i / chunks and the reduced
// indices [c * chunk_len, min(count, (c + 1) * chunk_len)) with c = i % chunks, writing
// out[o * chunks + c] = scale * partial sum. With chunks = 1 this is the whole reduction. Chunking
// keeps every invocation's loop short: lavapipe cuts loops past 65,535 iterations per invocation.
// Uniforms: ReduceParams (engine/src/ops/reduce.rs); n = outputs * chunks.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let chunks = u_chunks();
    let chunk_len = u_chunk_len();
    var rem = i / chunks;
    let c = i % chunks;
    var base = u_x();
    for (var d = i32(u_kept_rank()) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        base = base + (rem % u_kept_dims(du)) * u_kept_strides(du);
        rem = rem / u_kept_dims(du);
    }
    let start = c * chunk_len;
    let end = min(u_count(), start + chunk_len);
    var acc = {{INIT}};
    for (var r = start; r < end; r = r + 1u) {
        var rr = r;
        var off = base;
        for (var d = i32(u_red_rank()) - 1; d >= 0; d = d - 1) {
            let du = u32(d);
            off = off + (rr % u_red_dims(du)) * u_red_strides(du);
            rr = rr / u_red_dims(du);
        }
        let v = {{X}}[off];
        acc = {{COMBINE}};
    }
    {{O}}[u_out() + i] = acc * u_scale();
}
