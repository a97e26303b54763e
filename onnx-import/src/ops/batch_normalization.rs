//! BatchNormalization: `scale * (x - mean) / sqrt(var + epsilon) + B` over axis 1.
//!
//! Inference form: the running statistics become state parameters (they travel with the weights,
//! no optimizer moves them); `momentum` is kept for training, where the engine's training rewrite
//! uses batch statistics. Training form (`training_mode=1`, opset 14 on): decomposed into engine ops
//! on the batch's statistics (population variance), with the outputs `running_mean` and
//! `running_var` = `input * momentum + batch statistic * (1 - momentum)`, as ONNX defines them.
//!
//! Opset history: 1 (`consumed_inputs`, `is_test`: ignored) and 6 and 7 have `spatial` (only 1,
//! per-channel statistics, is supported; 9 drops it); before 14 the outputs past Y (training
//! statistics) are not produced; 14 adds `training_mode` and 15 widens the types.

use distk_engine::{BatchNorm, BinaryOp, Op, Reduce, ReduceOp, UnaryOp};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// BatchNormalization.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "BatchNormalization",
    spec: OpSpec {
        inputs: &[
            InputSpec::value("X"),
            InputSpec::value("scale"),
            InputSpec::value("B"),
            InputSpec::value("input_mean"),
            InputSpec::value("input_var"),
        ],
        outputs: &[
            OutputSpec::produced("Y"),
            OutputSpec::produced("running_mean"),
            OutputSpec::produced("running_var"),
            OutputSpec::not_produced("saved_mean"),
            OutputSpec::not_produced("saved_var"),
        ],
        attrs: &[
            AttrSpec::float("epsilon", 1e-5),
            AttrSpec::absent("momentum"),
            AttrSpec::int("spatial", 1).opsets(1, Some(8)),
            AttrSpec::int("training_mode", 0).opsets(14, None),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    if cx.opset < 9 && cx.int("spatial")? == 0 {
        return Err(cx.err("BatchNormalization with spatial=0 (per-activation statistics) is not supported"));
    }
    if cx.opset >= 14 && cx.int("training_mode")? == 1 {
        return training_form(cx);
    }
    if cx.has_output(1) || cx.has_output(2) {
        return Err(cx.err(
            "the running statistics outputs exist in training form only (training_mode=1, opset 14 on); export the inference graph",
        ));
    }
    let epsilon = cx.float("epsilon")?;
    let momentum = if cx.has("momentum")? { Some(cx.float("momentum")?) } else { None };
    let mut ins = Vec::with_capacity(5);
    for i in 0..3 {
        ins.push(cx.value(i)?);
    }
    for i in 3..5 {
        ins.push(cx.state(i)?);
    }
    cx.emit_out(Op::BatchNorm(BatchNorm { epsilon, momentum }), &ins)
}

/// The training form: batch statistics, and the running statistics as outputs 1 and 2.
fn training_form(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let shape = cx.shape(0)?;
    if shape.len() < 2 {
        return Err(cx.err(format!("input {shape:?} has no channel axis")));
    }
    let epsilon = cx.float("epsilon")?;
    let momentum = if cx.has("momentum")? { cx.float("momentum")? } else { 0.9 };
    let c = shape[1];
    let axes: Vec<usize> = (0..shape.len()).filter(|&a| a != 1).collect();
    let mut per_channel = vec![1; shape.len()];
    per_channel[1] = c;
    let x = cx.value(0)?;
    let (scale, bias) = (cx.value(1)?, cx.value(2)?);
    let (input_mean, input_var) = (cx.state(3)?, cx.state(4)?);
    let mean_op = || Op::Reduce(Reduce { op: ReduceOp::Mean, axes: axes.clone(), keepdims: true });
    let mean = cx.emit(mean_op(), &[x])?;
    let d = cx.emit(Op::Binary(BinaryOp::Sub), &[x, mean])?;
    let sq = cx.emit(Op::Binary(BinaryOp::Mul), &[d, d])?;
    let var = cx.emit(mean_op(), &[sq])?;
    let eps = cx.constant("epsilon", vec![], vec![epsilon])?;
    let std = cx.emit(Op::Binary(BinaryOp::Add), &[var, eps])?;
    let std = cx.emit(Op::Unary(UnaryOp::Sqrt), &[std])?;
    let scale = cx.reshape(scale, per_channel.clone())?;
    let bias = cx.reshape(bias, per_channel)?;
    let y = cx.emit(Op::Binary(BinaryOp::Div), &[d, std])?;
    let y = cx.emit(Op::Binary(BinaryOp::Mul), &[y, scale])?;
    let y = cx.emit(Op::Binary(BinaryOp::Add), &[y, bias])?;
    cx.set(y)?;
    let keep = cx.constant("momentum", vec![], vec![momentum])?;
    let take = cx.constant("one_minus_momentum", vec![], vec![1.0 - momentum])?;
    for (k, (batch, input)) in [(1, (mean, input_mean)), (2, (var, input_var))] {
        if cx.has_output(k) {
            let batch = cx.reshape(batch, vec![c])?;
            let input = cx.reshape(input, vec![c])?;
            let old = cx.emit(Op::Binary(BinaryOp::Mul), &[input, keep])?;
            let new = cx.emit(Op::Binary(BinaryOp::Mul), &[batch, take])?;
            let running = cx.emit(Op::Binary(BinaryOp::Add), &[old, new])?;
            cx.set_output(k, running)?;
        }
    }
    Ok(())
}
