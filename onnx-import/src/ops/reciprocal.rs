//! Reciprocal: `1 / x`, as an engine division of a scalar one by x; on constants a constant fold.
//!
//! Opset history: 1 (with `consumed_inputs`, ignored); 6 and 13 only widen the types.

use distk_engine::{BinaryOp, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{Consts, OpDef, OpSpec};
use crate::tensor::ConstTensor;

/// Reciprocal.
pub static OPS: &[OpDef] =
    &[OpDef { op_type: "Reciprocal", spec: OpSpec::DEFAULT, import: Some(import), fold: Some(fold) }];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let x = cx.value(0)?;
    let one = cx.constant("one", vec![], vec![1.0])?;
    cx.emit_out(Op::Binary(BinaryOp::Div), &[one, x])
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let mut x = cx.arg(c, 0)?.clone();
    x.data.iter_mut().for_each(|v| *v = 1.0 / *v);
    Ok(x)
}
