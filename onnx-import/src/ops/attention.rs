//! Attention (opset 23): `Y = softmax(softcap(Q K^T * scale) + bias) V`, per head, decomposed into
//! the engine's MatMul, Softmax and elementwise ops (so its gradient is autodiff's).
//!
//! - Q, K, V are `[batch, heads, seq, head_size]`, or `[batch, seq, heads * head_size]` with
//!   `q_num_heads`/`kv_num_heads` (split into heads and transposed, and the output merged back).
//! - `past_key`/`past_value` are concatenated before K and V along the sequence; the results are
//!   the `present_key`/`present_value` outputs.
//! - `scale` defaults to `1 / sqrt(head_size)`; `softcap > 0` maps the scores through
//!   `softcap * tanh(s / softcap)` before the bias is added.
//! - Grouped-query attention: with fewer KV heads than query heads (a divisor), each KV head serves
//!   `q_heads / kv_heads` consecutive query heads (numpy's `repeat` along the head axis).
//! - The bias is the sum of: `attn_mask` (float: added; bool: 0 where true, -inf where false; a
//!   mask shorter than the keys is padded with -inf/false), the causal mask when `is_causal`
//!   (query `i` sees key `j` when `j <= i + offset`, `offset` the past length, or per batch
//!   `nonpad_kv_seqlen[b] - q_len`), the sliding window (opset 25: `left_window_size`,
//!   `right_window_size`, -1 unbounded, around the same offset) and, with `nonpad_kv_seqlen`
//!   (opset 24), -inf at keys from `nonpad_kv_seqlen[b]` on.
//! - A query row whose bias is -inf everywhere attends nothing: its weights (and so its output
//!   row) are zero, as in ONNX's reference and function body.
//! - `qk_matmul_output` (output 3): mode 0 the scores (after the softcap when there is one, as
//!   ONNX's reference gives them), 1 after the softcap, 2 with the bias added, 3 the weights.
//!
//! How -inf is kept finite: the bias is clamped to `-1e30` before it is added, so a fully masked
//! row is a finite uniform softmax (then zeroed) instead of `-inf - -inf = NaN`, which would also
//! poison the gradient of every weight; `exp(-1e30 - m)` is exactly 0, as `exp(-inf)` is, for any
//! score `m` an f32 holds. `softmax_precision` is accepted and the softmax computed in float32.
//! Opset history: 23 introduced the op; 24 added `nonpad_kv_seqlen`; 25 the window sizes.

use distk_engine::{BinaryOp, Broadcast, Concat, DType, MatMul, Op, Reduce, ReduceOp, Softmax, Transpose, UnaryOp};
use distk_engine::{ValueId, Where};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// Attention.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Attention",
    spec: OpSpec {
        since: 23,
        inputs: &[
            InputSpec::value("Q"),
            InputSpec::value("K"),
            InputSpec::value("V"),
            InputSpec::value("attn_mask").optional(),
            InputSpec::value("past_key").optional(),
            InputSpec::value("past_value").optional(),
            InputSpec::value("nonpad_kv_seqlen").optional().since(24),
        ],
        outputs: &[
            OutputSpec::produced("Y"),
            OutputSpec::produced("present_key"),
            OutputSpec::produced("present_value"),
            OutputSpec::produced("qk_matmul_output"),
        ],
        attrs: &[
            AttrSpec::int("is_causal", 0),
            AttrSpec::absent("kv_num_heads"),
            AttrSpec::absent("q_num_heads"),
            AttrSpec::int("qk_matmul_output_mode", 0),
            AttrSpec::absent("scale"),
            AttrSpec::float("softcap", 0.0),
            AttrSpec::absent("softmax_precision"),
            AttrSpec::int("left_window_size", -1).opsets(25, None),
            AttrSpec::int("right_window_size", -1).opsets(25, None),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

/// The finite stand-in for -inf in the bias (see the module doc).
const NEG_BIG: f32 = -1e30;

/// The heads form of Q, K or V: `[b, s, h * d]` split into `[b, h, s, d]`, or the 4-D input itself.
fn to_heads(cx: &mut ImportCx<'_, '_>, i: usize, heads: Option<i64>) -> Result<ValueId> {
    let shape = cx.shape(i)?;
    let x = cx.value(i)?;
    match (shape.len(), heads) {
        (4, _) => Ok(x),
        (3, Some(h)) if h > 0 && shape[2] % h as usize == 0 => {
            let h = h as usize;
            let split = cx.reshape(x, vec![shape[0], shape[1], h, shape[2] / h])?;
            cx.emit(Op::Transpose(Transpose { perm: vec![0, 2, 1, 3] }), &[split])
        }
        (3, Some(h)) => {
            Err(cx.err(format!("{} has {} features, not a multiple of {h} heads", cx.input_label(i), shape[2])))
        }
        (3, None) => Err(cx.err("3-D Q, K and V need the q_num_heads and kv_num_heads attributes")),
        (r, _) => Err(cx.err(format!("{} has rank {r}; Attention takes rank 3 or 4", cx.input_label(i)))),
    }
}

/// Where a query may look, known at import: `allowed(i, j)` over `[q_len, kv_len]`.
fn static_part(q_len: usize, kv_len: usize, allowed: impl Fn(i64, i64) -> bool) -> Vec<f32> {
    let mut out = Vec::with_capacity(q_len * kv_len);
    for i in 0..q_len as i64 {
        for j in 0..kv_len as i64 {
            out.push(if allowed(i, j) { 0.0 } else { f32::NEG_INFINITY });
        }
    }
    out
}

/// `[q_len, kv_len]` int64 values `f(i, j)`, as an engine constant.
fn index_grid(
    cx: &mut ImportCx<'_, '_>,
    name: &str,
    q_len: usize,
    kv_len: usize,
    f: impl Fn(i64, i64) -> i64,
) -> Result<ValueId> {
    let mut data = Vec::with_capacity(q_len * kv_len);
    for i in 0..q_len as i64 {
        for j in 0..kv_len as i64 {
            data.push(f(i, j) as f32);
        }
    }
    cx.typed_constant(name, vec![q_len, kv_len], data, DType::I64)
}

/// `0` where `allowed`, `-inf` elsewhere.
fn to_bias(cx: &mut ImportCx<'_, '_>, allowed: ValueId) -> Result<ValueId> {
    let zero = cx.constant("zero", vec![], vec![0.0])?;
    let neg = cx.constant("neg_inf", vec![], vec![f32::NEG_INFINITY])?;
    cx.emit(Op::Where(Where), &[allowed, zero, neg])
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let rank = cx.shape(0)?.len();
    if cx.shape(1)?.len() != rank || cx.shape(2)?.len() != rank {
        return Err(cx.err("Q, K and V must have the same rank"));
    }
    let q_heads_attr = cx.int_opt("q_num_heads")?;
    let kv_heads_attr = cx.int_opt("kv_num_heads")?;
    let q = to_heads(cx, 0, q_heads_attr)?;
    let mut k = to_heads(cx, 1, kv_heads_attr)?;
    let mut v = to_heads(cx, 2, kv_heads_attr)?;
    let (qs, ks, vs) = (cx.value_shape(q), cx.value_shape(k), cx.value_shape(v));
    let (batch, q_heads, q_len, head_size) = (qs[0], qs[1], qs[2], qs[3]);
    if ks[0] != batch || vs[0] != batch || ks[3] != head_size || ks[1] != vs[1] || ks[2] != vs[2] {
        return Err(cx.err(format!(
            "Q {qs:?}, K {ks:?} and V {vs:?} (as [batch, heads, seq, head size]) do not fit one attention"
        )));
    }

    // The caches.
    let past_len = if cx.has_input(4) && cx.has_input(5) {
        let (pk, pv) = (cx.value(4)?, cx.value(5)?);
        let past_len = cx.value_shape(pk)[2];
        k = cx.emit(Op::Concat(Concat { axis: 2 }), &[pk, k])?;
        v = cx.emit(Op::Concat(Concat { axis: 2 }), &[pv, v])?;
        past_len
    } else if cx.has_input(4) || cx.has_input(5) {
        return Err(cx.err("past_key and past_value must be given together"));
    } else {
        0
    };
    cx.set_output(1, k)?;
    cx.set_output(2, v)?;
    let kv_heads = cx.value_shape(k)[1];
    let kv_len = cx.value_shape(k)[2];

    // Grouped-query attention: KV head h serves query heads h*r .. h*r + r - 1.
    if q_heads != kv_heads {
        if kv_heads == 0 || q_heads % kv_heads != 0 {
            return Err(cx.err(format!("{q_heads} query heads cannot share {kv_heads} key/value heads")));
        }
        let r = q_heads / kv_heads;
        for t in [&mut k, &mut v] {
            let s = cx.value_shape(*t);
            let one = cx.reshape(*t, vec![s[0], s[1], 1, s[2], s[3]])?;
            let rep = cx.emit(Op::Broadcast(Broadcast { shape: vec![s[0], s[1], r, s[2], s[3]] }), &[one])?;
            *t = cx.reshape(rep, vec![s[0], q_heads, s[2], s[3]])?;
        }
    }

    let scale = if cx.has("scale")? { cx.float("scale")? } else { 1.0 / (head_size as f32).sqrt() };
    let mut scores = cx.emit(Op::MatMul(MatMul { trans_a: false, trans_b: true, alpha: scale }), &[q, k])?;
    let softcap = cx.float("softcap")?;
    if softcap > 0.0 {
        let c = cx.constant("softcap", vec![], vec![softcap])?;
        let d = cx.emit(Op::Binary(BinaryOp::Div), &[scores, c])?;
        let t = cx.emit(Op::Unary(UnaryOp::Tanh), &[d])?;
        scores = cx.emit(Op::Binary(BinaryOp::Mul), &[t, c])?;
    }

    // The bias: a part known at import ([q_len, kv_len], -inf where masked) and run-time parts.
    let is_causal = cx.int("is_causal")? != 0;
    let (left, right) = if cx.declares("left_window_size") {
        (cx.int("left_window_size")?, cx.int("right_window_size")?)
    } else {
        (-1, -1)
    };
    let windowed = left >= 0 || right >= 0;
    let nonpad = if cx.has_input(6) {
        if past_len > 0 {
            return Err(cx.err("nonpad_kv_seqlen cannot be combined with past_key/past_value"));
        }
        let n = cx.value(6)?;
        if cx.value_shape(n) != [batch] {
            return Err(cx.err(format!("nonpad_kv_seqlen has shape {:?}, not [{batch}]", cx.value_shape(n))));
        }
        Some(n)
    } else {
        None
    };
    let mut fixed: Option<Vec<f32>> = None;
    let mut parts: Vec<ValueId> = Vec::new();
    if cx.has_input(3) {
        let mut mask = cx.value(3)?;
        let ms = cx.value_shape(mask);
        let bool_mask = cx.value_dtype(mask) == DType::Bool;
        let m_len = ms.last().copied().unwrap_or(1);
        if m_len > kv_len || ms.is_empty() {
            return Err(cx.err(format!("attn_mask has shape {ms:?}; its last dim must be at most {kv_len} keys")));
        }
        if m_len < kv_len {
            let mut pad_shape = ms.clone();
            let last = pad_shape.len() - 1;
            pad_shape[last] = kv_len - m_len;
            let n: usize = pad_shape.iter().product();
            let (fill, dtype) = if bool_mask { (0.0, DType::Bool) } else { (f32::NEG_INFINITY, DType::F32) };
            let pad = cx.typed_constant("mask_pad", pad_shape, vec![fill; n], dtype)?;
            mask = cx.emit(Op::Concat(Concat { axis: last }), &[mask, pad])?;
        }
        parts.push(if bool_mask { to_bias(cx, mask)? } else { mask });
    }
    match nonpad {
        None => {
            let offset = past_len as i64;
            if is_causal {
                fixed = Some(static_part(q_len, kv_len, |i, j| j <= i + offset));
            }
            if windowed {
                let window = static_part(q_len, kv_len, |i, j| {
                    let diff = i + offset - j;
                    (left < 0 || diff <= left) && (right < 0 || -diff <= right)
                });
                fixed = Some(match fixed {
                    Some(f) => f.iter().zip(&window).map(|(a, b)| a + b).collect(),
                    None => window,
                });
            }
        }
        Some(n) => {
            // Per batch, the query block ends at key nonpad[b]: offset[b] = nonpad[b] - q_len.
            let q = q_len as i64;
            let n3 = cx.reshape(n, vec![batch, 1, 1])?;
            let mut conditions: Vec<ValueId> = Vec::new();
            if is_causal {
                // j <= i + nonpad[b] - q  <=>  j - i + q <= nonpad[b].
                let d = index_grid(cx, "causal_frontier", q_len, kv_len, |i, j| j - i + q)?;
                conditions.push(cx.emit(Op::Binary(BinaryOp::LessOrEqual), &[d, n3])?);
            }
            if left >= 0 {
                // i + nonpad[b] - q - j <= left  <=>  nonpad[b] <= left + q + j - i.
                let e = index_grid(cx, "left_window", q_len, kv_len, |i, j| left + q + j - i)?;
                conditions.push(cx.emit(Op::Binary(BinaryOp::LessOrEqual), &[n3, e])?);
            }
            if right >= 0 {
                // j - i - nonpad[b] + q <= right  <=>  j - i + q - right <= nonpad[b].
                let f = index_grid(cx, "right_window", q_len, kv_len, |i, j| j - i + q - right)?;
                conditions.push(cx.emit(Op::Binary(BinaryOp::LessOrEqual), &[f, n3])?);
            }
            for c in conditions {
                let b = to_bias(cx, c)?;
                parts.push(cx.reshape(b, vec![batch, 1, q_len, kv_len])?);
            }
            // Keys from nonpad[b] on are padding.
            let js: Vec<f32> = (0..kv_len).map(|j| j as f32).collect();
            let j = cx.typed_constant("key_index", vec![1, kv_len], js, DType::I64)?;
            let n2 = cx.reshape(n, vec![batch, 1])?;
            let valid = cx.emit(Op::Binary(BinaryOp::Less), &[j, n2])?;
            let b = to_bias(cx, valid)?;
            parts.push(cx.reshape(b, vec![batch, 1, 1, kv_len])?);
        }
    }

    // The bias as added to the scores (clamped), as qk_matmul_output mode 2 shows it (not
    // clamped), and the rows it masks entirely.
    let mut bias: Option<(ValueId, ValueId)> = None;
    let mut masked_rows: Option<ValueId> = None;
    if parts.is_empty() {
        if let Some(f) = fixed {
            let clamped: Vec<f32> = f.iter().map(|v| v.max(NEG_BIG)).collect();
            let any_masked_row = f.chunks(kv_len.max(1)).any(|row| row.iter().all(|v| *v == f32::NEG_INFINITY));
            let raw = cx.constant("bias", vec![q_len, kv_len], f)?;
            let c = cx.constant("bias_clamped", vec![q_len, kv_len], clamped)?;
            bias = Some((c, raw));
            if any_masked_row {
                masked_rows = Some(rows_masked(cx, c)?);
            }
        }
    } else {
        let mut raw = parts[0];
        for &p in &parts[1..] {
            raw = cx.emit(Op::Binary(BinaryOp::Add), &[raw, p])?;
        }
        if let Some(f) = fixed {
            let c = cx.constant("bias", vec![q_len, kv_len], f)?;
            raw = cx.emit(Op::Binary(BinaryOp::Add), &[raw, c])?;
        }
        let floor = cx.constant("neg_big", vec![], vec![NEG_BIG])?;
        let clamped = cx.emit(Op::Binary(BinaryOp::Max), &[raw, floor])?;
        masked_rows = Some(rows_masked(cx, clamped)?);
        bias = Some((clamped, raw));
    }

    let logits = match bias {
        Some((clamped, _)) => cx.emit(Op::Binary(BinaryOp::Add), &[scores, clamped])?,
        None => scores,
    };
    let mut weights = cx.emit(Op::Softmax(Softmax { axis: 3, log: false }), &[logits])?;
    if let Some(rows) = masked_rows {
        let zero = cx.constant("zero", vec![], vec![0.0])?;
        weights = cx.emit(Op::Where(Where), &[rows, zero, weights])?;
    }
    let mut y = cx.emit(Op::MatMul(MatMul::plain()), &[weights, v])?;
    if rank == 3 {
        let ys = cx.value_shape(y);
        let t = cx.emit(Op::Transpose(Transpose { perm: vec![0, 2, 1, 3] }), &[y])?;
        y = cx.reshape(t, vec![ys[0], ys[2], ys[1] * ys[3]])?;
    }
    cx.set(y)?;
    if cx.has_output(3) {
        let out = match cx.int("qk_matmul_output_mode")? {
            0 | 1 => scores,
            2 => match bias {
                Some((_, raw)) => cx.emit(Op::Binary(BinaryOp::Add), &[scores, raw])?,
                None => scores,
            },
            3 => weights,
            m => return Err(cx.err(format!("qk_matmul_output_mode {m} is not one of 0, 1, 2, 3"))),
        };
        cx.set_output(3, out)?;
    }
    Ok(())
}

/// The rows (keepdims, last axis) of a clamped bias that mask every key.
fn rows_masked(cx: &mut ImportCx<'_, '_>, clamped: ValueId) -> Result<ValueId> {
    let rank = cx.value_shape(clamped).len();
    let max = cx.emit(Op::Reduce(Reduce { op: ReduceOp::Max, axes: vec![rank - 1], keepdims: true }), &[clamped])?;
    let floor = cx.constant("neg_big", vec![], vec![NEG_BIG])?;
    cx.emit(Op::Binary(BinaryOp::LessOrEqual), &[max, floor])
}
