//! LayerNormalization: `(x - mean) / sqrt(var + epsilon) * Scale + B` over the dims from `axis` on
//! (population variance), decomposed into engine reductions and elementwise ops (so its gradient is
//! autodiff's); the optional outputs Mean and InvStdDev (kept dims of size 1) are produced.
//!
//! Opset history: 17 (`stash_type` only sets the precision of the statistics; the engine computes
//! in float32).

use distk_engine::{BinaryOp, Op, Reduce, ReduceOp, UnaryOp};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// LayerNormalization.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "LayerNormalization",
    spec: OpSpec {
        since: 17,
        inputs: &[InputSpec::value("X"), InputSpec::value("Scale"), InputSpec::value("B").optional()],
        outputs: &[OutputSpec::produced("Y"), OutputSpec::produced("Mean"), OutputSpec::produced("InvStdDev")],
        attrs: &[AttrSpec::int("axis", -1), AttrSpec::float("epsilon", 1e-5), AttrSpec::int("stash_type", 1)],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let rank = cx.shape(0)?.len();
    let axis = cx.axis(cx.int("axis")?, rank)?;
    let epsilon = cx.float("epsilon")?;
    let axes: Vec<usize> = (axis..rank).collect();
    let mean_op = || Op::Reduce(Reduce { op: ReduceOp::Mean, axes: axes.clone(), keepdims: true });
    let x = cx.value(0)?;
    let scale = cx.value(1)?;
    let mean = cx.emit(mean_op(), &[x])?;
    let d = cx.emit(Op::Binary(BinaryOp::Sub), &[x, mean])?;
    let sq = cx.emit(Op::Binary(BinaryOp::Mul), &[d, d])?;
    let var = cx.emit(mean_op(), &[sq])?;
    let eps = cx.constant("epsilon", vec![], vec![epsilon])?;
    let one = cx.constant("one", vec![], vec![1.0])?;
    let v = cx.emit(Op::Binary(BinaryOp::Add), &[var, eps])?;
    let std = cx.emit(Op::Unary(UnaryOp::Sqrt), &[v])?;
    let inv = cx.emit(Op::Binary(BinaryOp::Div), &[one, std])?;
    let n = cx.emit(Op::Binary(BinaryOp::Mul), &[d, inv])?;
    let mut y = cx.emit(Op::Binary(BinaryOp::Mul), &[n, scale])?;
    if cx.has_input(2) {
        let b = cx.value(2)?;
        y = cx.emit(Op::Binary(BinaryOp::Add), &[y, b])?;
    }
    cx.set(y)?;
    cx.set_output(1, mean)?;
    cx.set_output(2, inv)
}
