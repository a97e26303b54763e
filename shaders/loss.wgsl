// Losses, their gradient and accuracy (Keras semantics; see engine/src/ops/loss.rs, the reference).
// KIND: 0 sparse CE on logits, 1 sparse CE on probabilities, 2 CE on logits, 3 CE on probabilities,
// 4 binary CE on logits, 5 binary CE on probabilities, 6 MSE, 7 MAE.
// Uniforms: LossParams (engine/src/ops/loss.rs).
const KIND: u32 = {{KIND}}u;
const EPS: f32 = 1e-7;
var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

fn pr(r: u32, c: u32) -> f32 { return {{P}}[u_pred() + r * u_width() + c]; }
fn tg(r: u32, c: u32) -> f32 {
    if (KIND <= 1u) { return {{T}}[u_target() + r]; }
    return {{T}}[u_target() + r * u_width() + c];
}
fn clip_p(x: f32) -> f32 { return clamp(x, EPS, 1.0 - EPS); }
// Row r's sparse label as a class index, or -1 when it is not one (negative, fractional, too
// large): that row's loss and gradient are NaN (engine/src/ops/loss_reference.rs).
fn sparse_class(r: u32) -> i32 {
    let t = tg(r, 0u);
    if (t < 0.0 || t != floor(t) || t >= f32(u_width())) { return -1; }
    return i32(t);
}
fn nan() -> f32 { return bitcast<f32>(0x7fc00000u); }
fn sigm(x: f32) -> f32 { return select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0); }
fn row_max(r: u32) -> f32 {
    var m = pr(r, 0u);
    for (var c = 1u; c < u_width(); c = c + 1u) { m = max(m, pr(r, c)); }
    return m;
}
fn row_lse(r: u32) -> f32 {
    let m = row_max(r);
    var s = 0.0;
    for (var c = 0u; c < u_width(); c = c + 1u) { s = s + exp(pr(r, c) - m); }
    return m + log(s);
}
fn row_sum(r: u32) -> f32 {
    var s = 0.0;
    for (var c = 0u; c < u_width(); c = c + 1u) { s = s + pr(r, c); }
    return s;
}
fn argmax_pred(r: u32) -> u32 {
    var b = 0u;
    for (var c = 1u; c < u_width(); c = c + 1u) { if (pr(r, c) > pr(r, b)) { b = c; } }
    return b;
}
fn argmax_target(r: u32) -> u32 {
    var b = 0u;
    for (var c = 1u; c < u_width(); c = c + 1u) { if (tg(r, c) > tg(r, b)) { b = c; } }
    return b;
}

fn row_loss(r: u32) -> f32 {
    let w = u_width();
    let k = f32(w);
    var l = 0.0;
    if (KIND <= 1u && sparse_class(r) < 0) { return nan(); }
    if (KIND == 0u) { return row_lse(r) - pr(r, u32(sparse_class(r))); }
    if (KIND == 1u) { return -log(clip_p(pr(r, u32(sparse_class(r))))); }
    if (KIND == 2u) {
        let lse = row_lse(r);
        for (var c = 0u; c < w; c = c + 1u) { l = l - tg(r, c) * (pr(r, c) - lse); }
        return l;
    }
    if (KIND == 3u) {
        let s = row_sum(r);
        for (var c = 0u; c < w; c = c + 1u) { l = l - tg(r, c) * log(clip_p(pr(r, c) / s)); }
        return l;
    }
    for (var c = 0u; c < w; c = c + 1u) {
        let z = pr(r, c);
        let y = tg(r, c);
        if (KIND == 4u) { l = l + max(z, 0.0) - z * y + softplus_neg_abs(z); }
        if (KIND == 5u) { let q = clip_p(z); l = l - (y * log(q) + (1.0 - y) * log(1.0 - q)); }
        if (KIND == 6u) { l = l + (z - y) * (z - y); }
        if (KIND == 7u) { l = l + abs(z - y); }
    }
    return l / k;
}

// log(1 + exp(-|z|)) by the atanh series (accurate where log() is not near 1).
fn softplus_neg_abs(z: f32) -> f32 {
    let t = exp(-abs(z));
    let s = t / (2.0 + t);
    let s2 = s * s;
    return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0
        + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0 + s2 * (1.0 / 17.0)))))))));
}

fn row_correct(r: u32) -> f32 {
    let w = u_width();
    if (KIND <= 1u) { return select(0.0, 1.0, i32(argmax_pred(r)) == sparse_class(r)); }
    if (w == 1u || KIND == 4u || KIND == 5u) {
        var thr = 0.5;
        if (KIND == 4u) { thr = 0.0; }
        var hits = 0.0;
        for (var c = 0u; c < w; c = c + 1u) {
            if ((pr(r, c) > thr) == (tg(r, c) > 0.5)) { hits = hits + 1.0; }
        }
        return hits / f32(w);
    }
    return select(0.0, 1.0, argmax_pred(r) == argmax_target(r));
}

// One workgroup: weighted mean of row_loss (MODE 0) or row_correct (MODE 1) into out[0].
@compute @workgroup_size(256)
fn reduce_rows(@builtin(local_invocation_index) li: u32) {
    var a = 0.0;
    var b = 0.0;
    for (var r = li; r < u_rows(); r = r + 256u) {
        let w = {{W}}[u_weight() + r];
        if (w != 0.0) {
            if ({{MODE}}u == 0u) { a = a + w * row_loss(r); } else { a = a + w * row_correct(r); }
        }
        b = b + w;
    }
    red_a[li] = a;
    red_b[li] = b;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s / 2u) {
        if (li < s) { red_a[li] = red_a[li] + red_a[li + s]; red_b[li] = red_b[li] + red_b[li + s]; }
        workgroupBarrier();
    }
    if (li == 0u) { {{O}}[u_out()] = red_a[0] / max(red_b[0], 1.1754944e-38); }
}

// One invocation per row: the gradient of the weighted mean loss. `total` (sum of weights) is
// recomputed per row: rows are few and this keeps the kernel single-pass.
@compute @workgroup_size(64)
fn grad_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= u_rows()) { return; }
    var total = 0.0;
    for (var i = 0u; i < u_rows(); i = i + 1u) { total = total + {{W}}[u_weight() + i]; }
    let scale = {{W}}[u_weight() + r] / max(total, 1.1754944e-38);
    let w = u_width();
    let k = f32(w);
    let out = u_out() + r * w;
    if (scale == 0.0) {
        for (var c = 0u; c < w; c = c + 1u) { {{O}}[out + c] = 0.0; }
        return;
    }
    if (KIND <= 1u && sparse_class(r) < 0) {
        for (var c = 0u; c < w; c = c + 1u) { {{O}}[out + c] = nan(); }
        return;
    }
    if (KIND == 0u || KIND == 2u) {
        let lse = row_lse(r);
        var tot = 1.0;
        if (KIND == 2u) { tot = 0.0; for (var c = 0u; c < w; c = c + 1u) { tot = tot + tg(r, c); } }
        for (var c = 0u; c < w; c = c + 1u) {
            var t = 0.0;
            if (KIND == 0u) { t = select(0.0, 1.0, i32(c) == sparse_class(r)); } else { t = tg(r, c); }
            {{O}}[out + c] = (exp(pr(r, c) - lse) * tot - t) * scale;
        }
        return;
    }
    if (KIND == 1u) {
        let y = u32(sparse_class(r));
        for (var c = 0u; c < w; c = c + 1u) {
            let v = pr(r, c);
            let q = clip_p(v);
            var g = 0.0;
            if (c == y && q == v) { g = -1.0 / q; }
            {{O}}[out + c] = g * scale;
        }
        return;
    }
    if (KIND == 3u) {
        let s = row_sum(r);
        var dot = 0.0;
        for (var c = 0u; c < w; c = c + 1u) {
            let q0 = pr(r, c) / s;
            let q = clip_p(q0);
            if (q == q0) { dot = dot + (-tg(r, c) / q) * q; }
        }
        for (var c = 0u; c < w; c = c + 1u) {
            let q0 = pr(r, c) / s;
            let q = clip_p(q0);
            var gq = 0.0;
            if (q == q0) { gq = -tg(r, c) / q; }
            {{O}}[out + c] = (gq - dot) / s * scale;
        }
        return;
    }
    for (var c = 0u; c < w; c = c + 1u) {
        let z = pr(r, c);
        let y = tg(r, c);
        var g = 0.0;
        if (KIND == 4u) { g = (sigm(z) - y) / k; }
        if (KIND == 5u) { let q = clip_p(z); if (q == z) { g = (-y / q + (1.0 - y) / (1.0 - q)) / k; } }
        if (KIND == 6u) { g = 2.0 * (z - y) / k; }
        if (KIND == 7u) { g = sign(z - y) / k; }
        {{O}}[out + c] = g * scale;
    }
}
