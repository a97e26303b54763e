// TopK along an axis: each invocation takes one input element, counts the elements of its row that
// come before it (larger, or equal at a lower position; smaller for the smallest k), and when that
// rank is below k writes the value and its position there. Ranks are a permutation of the row, so
// every output slot is written exactly once. Uniforms: TopKParams (engine/src/ops/top_k.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let r = i % u_inner();
    let t = i / u_inner();
    let a = t % u_len();
    let o = t / u_len();
    let base = u_x() + o * u_len() * u_inner() + r;
    let x = {{X}}[base + a * u_inner()];
    var rank = 0u;
    for (var j = 0u; j < u_len(); j = j + 1u) {
        let y = {{X}}[base + j * u_inner()];
        var before = y < x;
        if (u_largest() != 0u) { before = y > x; }
        if (before || (y == x && j < a)) { rank = rank + 1u; }
    }
    if (rank < u_k()) {
        let at = (o * u_k() + rank) * u_inner() + r;
        {{V}}[u_vals() + at] = x;
        {{IX}}[u_idx() + at] = f32(a);
    }
}
