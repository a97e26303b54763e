//! RotaryEmbedding (opset 23): rotates each pair `(x1, x2)` of the first `rotary_embedding_dim`
//! features of every head by the position's angle:
//! `(x1, x2) -> (cos * x1 - sin * x2, sin * x1 + cos * x2)`,
//! where `cos`/`sin` are `cos_cache[position_ids]` (or the caches themselves, `[batch, seq, dim/2]`,
//! without position ids). The pairs are the two halves of the rotated features, or with
//! `interleaved` the even and odd features. The input is `[batch, heads, seq, head_size]` or
//! `[batch, seq, heads * head_size]` with `num_heads`. Decomposed into Gather, Slice, elementwise ops
//! and Concat, so its gradient is autodiff's (the caches and position ids are not trained through).

use distk_engine::{BinaryOp, Concat, Gather, Op, Slice, Transpose, ValueId};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec};

/// RotaryEmbedding.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "RotaryEmbedding",
    spec: OpSpec {
        since: 23,
        inputs: &[
            InputSpec::value("X"),
            InputSpec::value("cos_cache"),
            InputSpec::value("sin_cache"),
            InputSpec::value("position_ids").optional(),
        ],
        attrs: &[
            AttrSpec::int("interleaved", 0),
            AttrSpec::int("num_heads", 0),
            AttrSpec::int("rotary_embedding_dim", 0),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let shape = cx.shape(0)?;
    let x = cx.value(0)?;
    // [batch, seq, heads, head_size].
    let x = match shape.len() {
        4 => cx.emit(Op::Transpose(Transpose { perm: vec![0, 2, 1, 3] }), &[x])?,
        3 => {
            let heads = cx.int("num_heads")?;
            if heads <= 0 || shape[2] % heads as usize != 0 {
                return Err(cx.err(format!(
                    "a 3-D input of {} features needs num_heads, a divisor of them (got {heads})",
                    shape[2]
                )));
            }
            let h = heads as usize;
            cx.reshape(x, vec![shape[0], shape[1], h, shape[2] / h])?
        }
        r => return Err(cx.err(format!("the input has rank {r}; RotaryEmbedding takes rank 3 or 4"))),
    };
    let xs = cx.value_shape(x);
    let (batch, seq, heads, head) = (xs[0], xs[1], xs[2], xs[3]);
    let rot = match cx.int("rotary_embedding_dim")? {
        0 => head,
        d if d > 0 && d as usize <= head && d % 2 == 0 => d as usize,
        d => return Err(cx.err(format!("rotary_embedding_dim {d} is not an even number of at most {head} features"))),
    };
    let half = rot / 2;
    let angles = |cx: &mut ImportCx<'_, '_>, i: usize| -> Result<ValueId> {
        let cache = cx.value(i)?;
        let c = if cx.has_input(3) {
            let ids = cx.value(3)?;
            cx.emit(Op::Gather(Gather { axis: 0 }), &[cache, ids])?
        } else {
            cache
        };
        let cs = cx.value_shape(c);
        if cs != [batch, seq, half] {
            return Err(cx.err(format!(
                "{} gives angles of shape {cs:?} where [{batch}, {seq}, {half}] (batch, sequence, rotated pairs) are needed",
                cx.input_label(i)
            )));
        }
        cx.reshape(c, vec![batch, seq, 1, half])
    };
    let cos = angles(cx, 1)?;
    let sin = angles(cx, 2)?;
    let rotated = if rot < head { cx.emit(Op::Slice(Slice { axis: 3, start: 0, len: rot }), &[x])? } else { x };
    let interleaved = cx.int("interleaved")? != 0;
    // The pairs as one axis of 2: [.., half, 2] interleaved, [.., 2, half] otherwise.
    let (pair_shape, pair_axis) =
        if interleaved { (vec![batch, seq, heads, half, 2], 4) } else { (vec![batch, seq, heads, 2, half], 3) };
    let pairs = cx.reshape(rotated, pair_shape.clone())?;
    let mut parts = Vec::new();
    for k in 0..2 {
        let p = cx.emit(Op::Slice(Slice { axis: pair_axis, start: k, len: 1 }), &[pairs])?;
        parts.push(cx.reshape(p, vec![batch, seq, heads, half])?);
    }
    let (x1, x2) = (parts[0], parts[1]);
    let mul = |cx: &mut ImportCx<'_, '_>, a, b| cx.emit(Op::Binary(BinaryOp::Mul), &[a, b]);
    let (c1, s2, s1, c2) = (mul(cx, cos, x1)?, mul(cx, sin, x2)?, mul(cx, sin, x1)?, mul(cx, cos, x2)?);
    let real = cx.emit(Op::Binary(BinaryOp::Sub), &[c1, s2])?;
    let imag = cx.emit(Op::Binary(BinaryOp::Add), &[s1, c2])?;
    let mut split_shape = pair_shape;
    split_shape[pair_axis] = 1;
    let real = cx.reshape(real, split_shape.clone())?;
    let imag = cx.reshape(imag, split_shape)?;
    let joined = cx.emit(Op::Concat(Concat { axis: pair_axis }), &[real, imag])?;
    let mut y = cx.reshape(joined, vec![batch, seq, heads, rot])?;
    if rot < head {
        let rest = cx.emit(Op::Slice(Slice { axis: 3, start: rot, len: head - rot }), &[x])?;
        y = cx.emit(Op::Concat(Concat { axis: 3 }), &[y, rest])?;
    }
    let y = match shape.len() {
        4 => cx.emit(Op::Transpose(Transpose { perm: vec![0, 2, 1, 3] }), &[y])?,
        _ => cx.reshape(y, shape)?,
    };
    cx.set(y)
}
