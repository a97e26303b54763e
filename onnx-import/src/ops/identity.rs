//! Identity: its output is its input, whatever that is (a constant, a parameter, a run-time value);
//! no engine node. Opsets 1, 13, 14, 16, 19, 21, 23 widen the types (sequences and optionals, which
//! the importer does not have, came at 14 and 16).

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{Consts, OpDef, OpSpec, OutputRule};
use crate::tensor::ConstTensor;

/// Identity.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Identity",
    spec: OpSpec { output: OutputRule::PassThrough, ..OpSpec::DEFAULT },
    import: Some(import),
    fold: Some(fold),
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    cx.forward(0)
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    cx.arg(c, 0).cloned()
}
