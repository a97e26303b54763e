//! Equal: elementwise `A == B` as a boolean tensor, broadcast: constant form only (masks computed
//! from shapes); the engine has no boolean tensors.
//!
//! Opset history: 1 broadcasts with `broadcast`/`axis` as the arithmetic ops do; 7 broadcasts the
//! numpy way; 11, 13 and 19 only widen the types.

use crate::context::NodeCx;
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::binary::{BINARY_SPEC, fold_operands};
use crate::ops::spec::{Consts, OpDef};
use crate::tensor::ConstTensor;

/// Equal.
pub static OPS: &[OpDef] = &[OpDef { op_type: "Equal", spec: BINARY_SPEC, import: None, fold: Some(fold) }];

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let (a, b) = fold_operands(cx, c)?;
    broadcast(&a, &b, false, |x, y| f64::from(u8::from(x == y))).map_err(|e| cx.err(e))
}
