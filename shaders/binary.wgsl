// out[i] = a[ia] (op) b[ib] with broadcast strides over up to 8 dims.
// Uniforms: BinaryParams (engine/src/ops/binary.rs).
// C's fmod (WGSL's % truncates, but x % inf must be x).
fn fmod_ieee(a: f32, b: f32) -> f32 {
    let inf = bitcast<f32>(0x7f800000u);
    if (abs(b) == inf && abs(a) != inf) { return a; }
    return a % b;
}
// The remainder with the divisor's sign (Python's %).
fn mod_floor(a: f32, b: f32) -> f32 {
    let r = fmod_ieee(a, b);
    if (r != 0.0 && (r < 0.0) != (b < 0.0)) { return r + b; }
    return r;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    var rem = i;
    var ia = u_a();
    var ib = u_b();
    for (var d = i32(u_rank()) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let c = rem % u_dims(du);
        rem = rem / u_dims(du);
        ia = ia + c * u_a_strides(du);
        ib = ib + c * u_b_strides(du);
    }
    let a = {{A}}[ia];
    let b = {{B}}[ib];
    {{O}}[u_out() + i] = {{EXPR}};
}
