// An index held as f32 (the engine stores integers as f32) wrapped against `dim` the ONNX way
// (negative counts from the end); -1 when out of range.
fn wrap_index(x: f32, dim: u32) -> i32 {
    var k = i32(x);
    if (k < 0) { k = k + i32(dim); }
    if (k < 0 || k >= i32(dim)) { return -1; }
    return k;
}

// `v` combined with `u` by a scatter reduction: 0 none (replace), 1 add, 2 mul, 3 max, 4 min.
fn scatter_reduce(v: f32, u: f32, reduction: u32) -> f32 {
    switch reduction {
        case 1u: { return v + u; }
        case 2u: { return v * u; }
        case 3u: { return max(v, u); }
        case 4u: { return min(v, u); }
        default: { return u; }
    }
}
