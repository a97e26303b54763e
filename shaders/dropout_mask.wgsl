// out[i] = (hash(seed, i) >= rate) / (1 - rate): the same hash as engine/src/ops/dropout.rs `dropout_keep`.
// Uniforms: DropoutMaskParams (engine/src/ops/dropout.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let seed = bitcast<u32>({{S}}[u_seed()]);
    let rate = u_rate();
    var h = seed ^ (i * 0x9E3779B9u);
    h = h * 747796405u + 2891336453u;
    h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
    h = (h >> 22u) ^ h;
    let u = f32(h >> 8u) / 16777216.0;
    {{O}}[u_out() + i] = select(0.0, 1.0 / (1.0 - rate), u >= rate);
}
