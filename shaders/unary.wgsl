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

// atan by Cephes' atanf (range reduction to |t| <= tan(pi/8), then a degree-9 odd polynomial; relative
// error about 1e-7): WGSL allows atan, asin and acos 4096 ULP, and llvmpipe's asin is 2.6e-4 off.
fn atan_precise(x: f32) -> f32 {
    let a = abs(x);
    var y = 0.0;
    var t = a;
    if (a > 2.414213562373095) {
        y = 1.5707963267948966;
        t = -1.0 / a;
    } else if (a > 0.4142135623730950) {
        y = 0.7853981633974483;
        t = (a - 1.0) / (a + 1.0);
    }
    let z = t * t;
    y = y + (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * t + t;
    return select(y, -y, x < 0.0);
}

// asin(x) = atan(x / sqrt(1 - x^2)) (x = +-1: atan(+-inf) = +-pi/2).
fn asin_precise(x: f32) -> f32 { return atan_precise(x / sqrt((1.0 - x) * (1.0 + x))); }

// acos(x) = 2 atan(sqrt((1 - x) / (1 + x))) (x = -1: 2 atan(inf) = pi).
fn acos_precise(x: f32) -> f32 { return 2.0 * atan_precise(sqrt((1.0 - x) / (1.0 + x))); }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= u_n()) { return; }
    let x = {{X}}[u_x() + i];
    {{O}}[u_out() + i] = {{EXPR}};
}
