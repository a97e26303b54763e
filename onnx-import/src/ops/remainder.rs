//! Mod: the elementwise remainder of two broadcast tensors, with the divisor's sign (`fmod=0`,
//! Python's `%`; integers) or the dividend's (`fmod=1`, C's `fmod`; required for floats); the
//! engine's [`BinaryOp::Mod`] / [`BinaryOp::Fmod`] at run time, folded on constants.
//!
//! Opset history: 10; 13 widens the types.

use distk_engine::{BinaryOp, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::ConstTensor;

/// Mod.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Mod",
    spec: OpSpec {
        since: 10,
        inputs: &[InputSpec::value("A"), InputSpec::value("B")],
        outputs: &[OutputSpec::produced("C")],
        attrs: &[AttrSpec::int("fmod", 0)],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

fn engine_op(cx: &NodeCx<'_>) -> Result<BinaryOp> {
    Ok(if cx.int("fmod")? == 1 { BinaryOp::Fmod } else { BinaryOp::Mod })
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let op = engine_op(cx)?;
    let (a, b) = (cx.value(0)?, cx.value(1)?);
    cx.emit_out(Op::Binary(op), &[a, b])
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let op = engine_op(cx)?;
    let (a, b) = (cx.arg(c, 0)?, cx.arg(c, 1)?);
    let is_float = a.is_float || b.is_float;
    broadcast(a, b, is_float, |x, y| if y == 0.0 && !is_float { 0.0 } else { op.apply(x, y) }).map_err(|e| cx.err(e))
}
