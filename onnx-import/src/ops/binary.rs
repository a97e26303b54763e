//! The elementwise arithmetic of two broadcast tensors: Add, Sub, Mul, Div, Pow. Each maps onto one
//! engine [`BinaryOp`] and folds on constants (integer division truncates, as ONNX's does).
//!
//! Opset history: 1 and 6 broadcast only with `broadcast=1`, aligning B with A from `axis` on (a
//! B that fits A's trailing dims needs no `axis`); from 7 numpy broadcasting applies and those
//! attributes are gone; 13 and 14 (Pow: 12, 13, 15) only widen the types.

use distk_engine::{BinaryOp, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::ConstTensor;

/// The attributes of the legacy (opsets 1 to 6) broadcasting form.
pub(super) const LEGACY_BROADCAST: &[AttrSpec] =
    &[AttrSpec::int("broadcast", 0).opsets(1, Some(6)), AttrSpec::absent("axis").opsets(1, Some(6))];

/// The inputs and output of an elementwise binary op.
pub(super) const BINARY_SPEC: OpSpec = OpSpec {
    inputs: &[InputSpec::value("A"), InputSpec::value("B")],
    outputs: &[OutputSpec::produced("C")],
    attrs: LEGACY_BROADCAST,
    ..OpSpec::DEFAULT
};

const fn arithmetic(op_type: &'static str) -> OpDef {
    OpDef { op_type, spec: BINARY_SPEC, import: Some(import), fold: Some(fold) }
}

/// The arithmetic ops.
pub static OPS: &[OpDef] =
    &[arithmetic("Add"), arithmetic("Sub"), arithmetic("Mul"), arithmetic("Div"), arithmetic("Pow")];

/// Below opset 7, `broadcast=1` with `axis` aligns B's dims with A's from `axis` on: the shape B is
/// given so that numpy broadcasting does the same. `None` when plain numpy broadcasting applies.
pub(super) fn legacy_b_shape(cx: &NodeCx<'_>, sa: &[usize], sb: &[usize]) -> Result<Option<Vec<usize>>> {
    if cx.opset >= 7 || cx.int("broadcast")? != 1 {
        return Ok(None);
    }
    let Some(axis) = cx.int_opt("axis")? else { return Ok(None) };
    let axis = cx.axis(axis, sa.len())?;
    let room = sa.len() - axis;
    if sb.len() > room {
        return Err(cx.err(format!("B {sb:?} does not fit A {sa:?} from axis {axis}")));
    }
    let mut shape = sb.to_vec();
    shape.resize(room, 1);
    Ok(Some(shape))
}

fn engine_op(cx: &NodeCx<'_>) -> Result<BinaryOp> {
    Ok(match cx.def.op_type {
        "Add" => BinaryOp::Add,
        "Sub" => BinaryOp::Sub,
        "Mul" => BinaryOp::Mul,
        "Div" => BinaryOp::Div,
        "Pow" => BinaryOp::Pow,
        other => return Err(cx.err(format!("internal: {other} is not an arithmetic op"))),
    })
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let op = engine_op(cx)?;
    let (sa, sb) = (cx.shape(0)?, cx.shape(1)?);
    let (a, mut b) = (cx.value(0)?, cx.value(1)?);
    if let Some(shape) = legacy_b_shape(cx, &sa, &sb)? {
        b = cx.reshape(b, shape)?;
    }
    let integers = !cx.value_dtype(a).is_float() && !cx.value_dtype(b).is_float();
    if op == BinaryOp::Div && integers {
        // Integer division truncates toward zero, as ONNX's does.
        let q = cx.emit(Op::Binary(op), &[a, b])?;
        let to = cx.value_dtype(a);
        return cx.emit_out(Op::Cast(distk_engine::Cast { to }), &[q]);
    }
    cx.emit_out(Op::Binary(op), &[a, b])
}

/// B of a fold, reshaped for the legacy broadcasting form where it applies.
pub(super) fn fold_operands(cx: &NodeCx<'_>, c: &Consts) -> Result<(ConstTensor, ConstTensor)> {
    let (a, b) = (cx.arg(c, 0)?.clone(), cx.arg(c, 1)?.clone());
    Ok(match legacy_b_shape(cx, &a.shape, &b.shape)? {
        Some(shape) => (a, ConstTensor { shape, ..b }),
        None => (a, b),
    })
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let op = engine_op(cx)?;
    let (a, b) = fold_operands(cx, c)?;
    let is_float = a.is_float || b.is_float;
    broadcast(&a, &b, is_float, |x, y| match op {
        BinaryOp::Div if !is_float => {
            if y == 0.0 {
                0.0
            } else {
                (x / y).trunc()
            }
        }
        op => op.apply(x, y),
    })
    .map_err(|e| cx.err(e))
}
