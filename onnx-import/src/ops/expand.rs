//! Expand: the input broadcast the numpy way with a shape known at import (entries of 1 keep the
//! input's dim); the engine's [`Broadcast`] at run time, a fold on constants.
//!
//! Opset history: 8; 13 widens the types.

use distk_engine::{Broadcast, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::broadcast;
use crate::ops::spec::{Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::{ConstTensor, created_numel};

/// Expand.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Expand",
    spec: OpSpec {
        since: 8,
        inputs: &[InputSpec::value("input"), InputSpec::known("shape")],
        outputs: &[OutputSpec::produced("output")],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

/// The requested shape as dims (each at least 0).
fn requested(cx: &NodeCx<'_>, shape: &ConstTensor) -> Result<Vec<usize>> {
    shape
        .as_i64()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| cx.err(format!("shape entry {d} is negative"))))
        .collect()
}

/// The output shape: `x` and `shape` broadcast together.
fn out_shape(cx: &NodeCx<'_>, x: &[usize], shape: &[usize]) -> Result<Vec<usize>> {
    let out = distk_engine::shape::broadcast_shapes(x, shape)
        .ok_or_else(|| cx.err(format!("input {x:?} does not broadcast to shape {shape:?}")))?;
    created_numel(&out).map_err(|e| cx.err(e))?;
    Ok(out)
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let shape = requested(cx, &cx.require_known(1)?)?;
    let xs = cx.shape(0)?;
    let out = out_shape(cx, &xs, &shape)?;
    let x = cx.value(0)?;
    if out == xs {
        return cx.set(x);
    }
    // Broadcast aligns trailing dims; a target of higher rank is reached through a reshape first.
    let mut lifted = vec![1; out.len() - xs.len()];
    lifted.extend_from_slice(&xs);
    let x = cx.reshape(x, lifted)?;
    cx.emit_out(Op::Broadcast(Broadcast { shape: out }), &[x])
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let x = cx.arg(c, 0)?;
    let shape = requested(cx, cx.arg(c, 1)?)?;
    out_shape(cx, &x.shape, &shape)?;
    let ones = ConstTensor { data: vec![0.0; created_numel(&shape).map_err(|e| cx.err(e))?], shape, is_float: false };
    broadcast(x, &ones, x.is_float, |a, _| a).map_err(|e| cx.err(e))
}
