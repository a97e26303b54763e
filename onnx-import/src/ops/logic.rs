//! The logical ops And, Or, Xor (elementwise, broadcast) and Not, on booleans (any nonzero value is
//! true): the engine's logical [`BinaryOp`]s at run time (Not as `x == 0`), folded on constants.
//!
//! Opset history: And, Or, Xor 1 broadcast with `broadcast`/`axis`; from 7 numpy broadcasting. Not
//! is unchanged since 1.

use distk_engine::{BinaryOp, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::binary::{BINARY_SPEC, fold_operands};
use crate::ops::compare::import_binary;
use crate::ops::spec::{Consts, OpDef, OpSpec};
use crate::tensor::ConstTensor;

const fn logical(op_type: &'static str) -> OpDef {
    OpDef { op_type, spec: BINARY_SPEC, import: Some(import), fold: Some(fold) }
}

/// The logical ops.
pub static OPS: &[OpDef] = &[
    logical("And"),
    logical("Or"),
    logical("Xor"),
    OpDef { op_type: "Not", spec: OpSpec::DEFAULT, import: Some(import_not), fold: Some(fold_not) },
];

fn engine_op(cx: &NodeCx<'_>) -> Result<BinaryOp> {
    Ok(match cx.def.op_type {
        "And" => BinaryOp::And,
        "Or" => BinaryOp::Or,
        "Xor" => BinaryOp::Xor,
        other => return Err(cx.err(format!("internal: {other} is not a logical op"))),
    })
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

fn import_not(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let x = cx.value(0)?;
    let zero = cx.constant("zero", vec![], vec![0.0])?;
    cx.emit_out(Op::Binary(BinaryOp::Equal), &[x, zero])
}

fn fold_not(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let x = cx.arg(c, 0)?;
    Ok(ConstTensor {
        shape: x.shape.clone(),
        data: x.data.iter().map(|&v| f64::from(u8::from(v == 0.0))).collect(),
        is_float: false,
    })
}
