// Window geometry shared by im2col, col2im and pooling, in the uniform field `window` (21 words:
// input d,h,w; output d,h,w; kernel; stride; dilation; pad before; pad after; see Window3).
fn g(i: u32) -> u32 { return u_window(i); }

// Input flat position read by output position o at kernel offset k, or -1 in the padding.
fn window_source(o: vec3<u32>, k: vec3<u32>) -> i32 {
    var idx = 0;
    for (var d = 0u; d < 3u; d = d + 1u) {
        let pos = i32(o[d] * g(9u + d) + k[d] * g(12u + d)) - i32(g(15u + d));
        if (pos < 0 || pos >= i32(g(d))) { return -1; }
        idx = idx * i32(g(d)) + pos;
    }
    return idx;
}

// Whether kernel offset k of output o lies inside the explicitly padded input.
fn window_in_padded(o: vec3<u32>, k: vec3<u32>) -> bool {
    for (var d = 0u; d < 3u; d = d + 1u) {
        if (o[d] * g(9u + d) + k[d] * g(12u + d) >= g(15u + d) + g(d) + g(18u + d)) { return false; }
    }
    return true;
}

fn unflatten3(dh: u32, dw: u32, flat: u32) -> vec3<u32> {
    return vec3<u32>(flat / (dh * dw), (flat / dw) % dh, flat % dw);
}

// The flat output position whose window reads input position `pos` at kernel offset k, or -1.
fn window_output_of(pos: vec3<u32>, k: vec3<u32>) -> i32 {
    var idx = 0;
    for (var d = 0u; d < 3u; d = d + 1u) {
        let t = i32(pos[d] + g(15u + d)) - i32(k[d] * g(12u + d));
        if (t < 0 || t % i32(g(9u + d)) != 0) { return -1; }
        let o = t / i32(g(9u + d));
        if (o >= i32(g(3u + d))) { return -1; }
        idx = idx * i32(g(3u + d)) + o;
    }
    return idx;
}
