//! Sum and Mean of one or more tensors, broadcast: engine additions folded left over the inputs
//! (Mean then divides by their count); on constants a constant fold.
//!
//! Opset history: 1 (with `consumed_inputs`, ignored) and 6 need equal shapes, 8 broadcasts (the
//! import and the fold broadcast at every opset), 13 only widens the types.

use distk_engine::{BinaryOp, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::min_max::fold_left;
use crate::ops::spec::{Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::ConstTensor;

const SPEC: OpSpec = OpSpec {
    inputs: &[InputSpec::value("data_0").variadic()],
    outputs: &[OutputSpec::produced("sum")],
    ..OpSpec::DEFAULT
};

/// Sum and Mean.
pub static OPS: &[OpDef] = &[
    OpDef { op_type: "Sum", spec: SPEC, import: Some(import), fold: Some(fold) },
    OpDef {
        op_type: "Mean",
        spec: OpSpec { outputs: &[OutputSpec::produced("mean")], ..SPEC },
        import: Some(import),
        fold: Some(fold),
    },
];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let sum = fold_left(cx, BinaryOp::Add)?;
    let n = (0..cx.node.input.len()).filter(|&i| cx.has_input(i)).count();
    if cx.def.op_type == "Sum" || n == 1 {
        return cx.set(sum);
    }
    let count = cx.constant("count", vec![], vec![n as f32])?;
    cx.emit_out(Op::Binary(BinaryOp::Div), &[sum, count])
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let mut inputs = c.present();
    let first = inputs.next().ok_or_else(|| cx.err("needs at least one input"))?.clone();
    let mut n = 1usize;
    let mut sum = inputs.try_fold(first, |acc, t| {
        n += 1;
        broadcast(&acc, t, acc.is_float || t.is_float, |x, y| x + y).map_err(|e| cx.err(e))
    })?;
    if cx.def.op_type == "Mean" && n > 1 {
        let is_float = sum.is_float;
        sum.data.iter_mut().for_each(|v| *v = if is_float { *v / n as f64 } else { (*v / n as f64).trunc() });
    }
    Ok(sum)
}
