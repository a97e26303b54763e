//! HardSwish: `x * max(0, min(1, x / 6 + 1 / 2))`, as the engine's HardSigmoid (alpha 1/6, beta 1/2)
//! times x. Opset 14 introduced it; 22 only widened the types.

use distk_engine::{BinaryOp, Op, UnaryOp};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{OpDef, OpSpec};

/// HardSwish.
pub static OPS: &[OpDef] =
    &[OpDef { op_type: "HardSwish", spec: OpSpec { since: 14, ..OpSpec::DEFAULT }, import: Some(import), fold: None }];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let x = cx.value(0)?;
    let gate = cx.emit(Op::Unary(UnaryOp::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }), &[x])?;
    cx.emit_out(Op::Binary(BinaryOp::Mul), &[x, gate])
}
