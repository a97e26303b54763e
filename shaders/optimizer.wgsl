// One optimizer step over the trainable prefix of the flat parameter buffer (see
// engine/src/optimizer.rs for the equations). P: 0 n, 1 state offset (so), 2..8 lr, wd, c0..c3.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let n = p(0u);
    if (i >= n) { return; }
    let so = p(1u);
    let lr = pf(2u);
    let wd = pf(3u);
    let c0 = pf(4u);
    let c1 = pf(5u);
    let c2 = pf(6u);
    let c3 = pf(7u);
    let g = {{G}}[i];
    var pv = {{P}}[i];
    {{BODY}}
    {{P}}[i] = pv;
}
