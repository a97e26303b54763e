// One optimizer step over the trainable prefix of the flat parameter buffer (see
// engine/src/optimizer.rs for the equations). Uniforms: OptimizerParams (engine/src/wgpu_exec/lower.rs).
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let n = u_n();
    if (i >= n) { return; }
    let so = u_state_offset();
    let lr = u_lr();
    let wd = u_wd();
    let c0 = u_c0();
    let c1 = u_c1();
    let c2 = u_c2();
    let c3 = u_c3();
    let g = {{G}}[i];
    var pv = {{P}}[i];
    {{BODY}}
    {{P}}[i] = pv;
}
