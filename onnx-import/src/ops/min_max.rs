//! Min and Max of one or more tensors, broadcast: the engine's elementwise [`BinaryOp::Min`] and
//! [`BinaryOp::Max`] folded left over the inputs; on constants (shape arithmetic such as clamping a
//! computed size) a constant fold.
//!
//! Opset history: 1 (with `consumed_inputs`, ignored) and 6 need equal shapes, 8 broadcasts (the
//! import and the fold broadcast at every opset), 12 and 13 only widen the types.

use distk_engine::{BinaryOp, Op, ValueId};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::spec::{Consts, InputSpec, OpDef, OpSpec, OutputRule, OutputSpec};
use crate::tensor::ConstTensor;

const SPEC: OpSpec = OpSpec {
    inputs: &[InputSpec::value("data_0").variadic()],
    outputs: &[OutputSpec::produced("result")],
    output: OutputRule::Computed,
    ..OpSpec::DEFAULT
};

const fn min_max(op_type: &'static str) -> OpDef {
    OpDef { op_type, spec: SPEC, import: Some(import), fold: Some(fold) }
}

/// Min and Max.
pub static OPS: &[OpDef] = &[min_max("Min"), min_max("Max")];

/// The present inputs of a variadic node folded left with `op` (broadcasting), as engine values;
/// one input is returned as it is.
pub(super) fn fold_left(cx: &mut ImportCx<'_, '_>, op: BinaryOp) -> Result<ValueId> {
    let mut y = cx.value(0)?;
    for i in 1..cx.node.input.len() {
        if cx.has_input(i) {
            let x = cx.value(i)?;
            y = cx.emit(Op::Binary(op), &[y, x])?;
        }
    }
    Ok(y)
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let op = if cx.def.op_type == "Max" { BinaryOp::Max } else { BinaryOp::Min };
    let y = fold_left(cx, op)?;
    cx.set(y)
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let max = cx.def.op_type == "Max";
    let mut inputs = c.present();
    let first = inputs.next().ok_or_else(|| cx.err("needs at least one input"))?.clone();
    inputs.try_fold(first, |acc, t| {
        broadcast(&acc, t, acc.is_float || t.is_float, |x, y| if max { x.max(y) } else { x.min(y) })
            .map_err(|e| cx.err(e))
    })
}
