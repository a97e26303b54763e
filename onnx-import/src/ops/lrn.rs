//! LRN, local response normalisation across channels:
//! `y = x / (bias + alpha / size * square_sum) ^ beta`, where `square_sum[n, c, ..]` sums `x^2`
//! over the channels `c - floor((size - 1) / 2) ..= c + ceil((size - 1) / 2)` that exist.
//! Decomposed (gradients by autodiff): `x * x` seen as `[N, 1, C, rest]`, the engine's average pool
//! along the channels counting the zero padding, times the window length (the sum), then the
//! elementwise rest. A window longer than the channels is cut to what it can reach (the sum is the
//! same).
//!
//! Opset history: 1; 13 widens the types.

use distk_engine::{BinaryOp, Op, PoolAttrs, PoolKind};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, OpDef, OpSpec};
use crate::tensor::numel;

/// LRN.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "LRN",
    spec: OpSpec {
        attrs: &[
            AttrSpec::float("alpha", 1e-4),
            AttrSpec::float("beta", 0.75),
            AttrSpec::float("bias", 1.0),
            AttrSpec::required("size"),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    if s.len() < 3 {
        return Err(cx.err(format!("input {s:?}: LRN takes [N, C, D1, ...]")));
    }
    let size = cx.int("size")?;
    if size < 1 {
        return Err(cx.err(format!("size {size} must be positive")));
    }
    let (alpha, beta, bias) = (cx.float("alpha")?, cx.float("beta")?, cx.float("bias")?);
    let c = s[1];
    // The channels before and after each one its window reaches, cut to the channels there are.
    let before = usize::try_from((size - 1) / 2).unwrap_or(usize::MAX).min(c.saturating_sub(1));
    let after = usize::try_from(size / 2).unwrap_or(usize::MAX).min(c.saturating_sub(1));
    let window = before + after + 1;
    let rest = numel(&s[2..]).map_err(|e| cx.err(e))?;
    let x = cx.value(0)?;
    let sq = cx.emit(Op::Binary(BinaryOp::Mul), &[x, x])?;
    let planes = cx.reshape(sq, vec![s[0], 1, c, rest])?;
    let attrs = PoolAttrs {
        kind: PoolKind::Average { count_include_pad: true },
        kernel: vec![window, 1],
        strides: vec![1, 1],
        dilations: vec![1, 1],
        pads_begin: vec![before, 0],
        pads_end: vec![after, 0],
        ceil_mode: false,
    };
    let mean = cx.emit(Op::Pool(attrs), &[planes])?;
    let mean = cx.reshape(mean, s)?;
    // bias + alpha / size * (mean * window)
    let scale = cx.constant("scale", vec![], vec![alpha / size as f32 * window as f32])?;
    let scaled = cx.emit(Op::Binary(BinaryOp::Mul), &[mean, scale])?;
    let b = cx.constant("bias", vec![], vec![bias])?;
    let base = cx.emit(Op::Binary(BinaryOp::Add), &[scaled, b])?;
    let e = cx.constant("beta", vec![], vec![beta])?;
    let den = cx.emit(Op::Binary(BinaryOp::Pow), &[base, e])?;
    cx.emit_out(Op::Binary(BinaryOp::Div), &[x, den])
}
