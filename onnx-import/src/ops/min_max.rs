//! Min and Max of one or more tensors, broadcast: constant form only (shape arithmetic such as
//! clamping a computed size); there is no engine op for them on run-time values.
//!
//! Opset history: 1 (with `consumed_inputs`, ignored) and 6 need equal shapes, 8 broadcasts (the
//! fold broadcasts at every opset), 12 and 13 only widen the types.

use crate::context::NodeCx;
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::spec::{Consts, InputSpec, OpDef, OpSpec, OutputRule, OutputSpec};
use crate::tensor::ConstTensor;

const SPEC: OpSpec = OpSpec {
    inputs: &[InputSpec::known("data_0").variadic()],
    outputs: &[OutputSpec::produced("result")],
    output: OutputRule::Computed,
    ..OpSpec::DEFAULT
};

const fn min_max(op_type: &'static str) -> OpDef {
    OpDef { op_type, spec: SPEC, import: None, fold: Some(fold) }
}

/// Min and Max.
pub static OPS: &[OpDef] = &[min_max("Min"), min_max("Max")];

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let max = cx.def.op_type == "Max";
    let mut inputs = c.present();
    let first = inputs.next().ok_or_else(|| cx.err("needs at least one input"))?.clone();
    inputs.try_fold(first, |acc, t| {
        broadcast(&acc, t, acc.is_float || t.is_float, |x, y| if max { x.max(y) } else { x.min(y) })
            .map_err(|e| cx.err(e))
    })
}
