//! The comparisons Equal, Less, LessOrEqual, Greater, GreaterOrEqual: elementwise and broadcast,
//! a boolean result; the engine's comparison [`BinaryOp`]s at run time, folded on constants (masks
//! computed from shapes).
//!
//! Opset history: Equal 1, Less and Greater 1 broadcast with `broadcast`/`axis` as the arithmetic
//! ops do; from 7 numpy broadcasting; 9, 11, 13 and 19 only widen the types. LessOrEqual and
//! GreaterOrEqual exist from 12 (16 widens the types).

use distk_engine::{BinaryOp, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::binary::{BINARY_SPEC, fold_operands, legacy_b_shape};
use crate::ops::spec::{Consts, OpDef};
use crate::tensor::ConstTensor;

const fn comparison(op_type: &'static str) -> OpDef {
    OpDef { op_type, spec: BINARY_SPEC, import: Some(import), fold: Some(fold) }
}

/// The comparisons.
pub static OPS: &[OpDef] = &[
    comparison("Equal"),
    comparison("Less"),
    comparison("LessOrEqual"),
    comparison("Greater"),
    comparison("GreaterOrEqual"),
];

fn engine_op(cx: &NodeCx<'_>) -> Result<BinaryOp> {
    Ok(match cx.def.op_type {
        "Equal" => BinaryOp::Equal,
        "Less" => BinaryOp::Less,
        "LessOrEqual" => BinaryOp::LessOrEqual,
        "Greater" => BinaryOp::Greater,
        "GreaterOrEqual" => BinaryOp::GreaterOrEqual,
        other => return Err(cx.err(format!("internal: {other} is not a comparison"))),
    })
}

/// Imports a binary op whose engine form is `op` (the comparisons and the logical ops).
pub(super) fn import_binary(cx: &mut ImportCx<'_, '_>, op: BinaryOp) -> Result<()> {
    let (sa, sb) = (cx.shape(0)?, cx.shape(1)?);
    let (a, mut b) = (cx.value(0)?, cx.value(1)?);
    if let Some(shape) = legacy_b_shape(cx, &sa, &sb)? {
        b = cx.reshape(b, shape)?;
    }
    cx.emit_out(Op::Binary(op), &[a, b])
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let op = engine_op(cx)?;
    import_binary(cx, op)
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let op = engine_op(cx)?;
    let (a, b) = fold_operands(cx, c)?;
    broadcast(&a, &b, false, |x, y| op.apply(x, y)).map_err(|e| cx.err(e))
}
