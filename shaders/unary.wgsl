// out[i] = f(x[i]). Uniforms: UnaryParams (engine/src/ops/unary.rs).

// log(1 + exp(x)) without log(): Vulkan allows log() an absolute error of 2^-21 near 1, which would
// cost the small results all their precision. log1p(t) = 2 atanh(s), s = t / (2 + t) <= 1/3, by series.
fn softplus(x: f32) -> f32 {
    let t = exp(-abs(x));
    let s = t / (2.0 + t);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0
        + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0 + s2 * (1.0 / 17.0))))))));
    return max(x, 0.0) + 2.0 * s * series;
}

// erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
fn erf_approx(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    return sign(x) * (1.0 - poly * exp(-a * a));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let x = {{X}}[u_x() + i];
    {{O}}[u_out() + i] = {{EXPR}};
}
