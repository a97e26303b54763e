//! Clip: `min(max(x, min), max)`.
//!
//! Opset history: 1 and 6 take `min`/`max` as float attributes (default: unbounded); from 11 they
//! are optional inputs: known at import (constants or initializers), they become the engine's
//! `Clip`; computed at run time, the engine's elementwise Max then Min (all `max` where `min > max`,
//! as ONNX says). 12 and 13 only widen the types.

use distk_engine::{BinaryOp, Op, UnaryOp};

use crate::context::{ImportCx, Kind};
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec};

/// Clip.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Clip",
    spec: OpSpec {
        inputs: &[
            InputSpec::value("input"),
            InputSpec::value("min").optional().since(11),
            InputSpec::value("max").optional().since(11),
        ],
        attrs: &[
            AttrSpec::float("min", f32::NEG_INFINITY).opsets(1, Some(10)),
            AttrSpec::float("max", f32::INFINITY).opsets(1, Some(10)),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    if cx.opset >= 11 && (cx.kind(1)? == Some(Kind::RunTime) || cx.kind(2)? == Some(Kind::RunTime)) {
        return import_run_time_bounds(cx);
    }
    let (min, max) = if cx.opset < 11 {
        (cx.float("min")?, cx.float("max")?)
    } else {
        let bound = |i: usize, unbounded: f32| -> Result<f32> {
            Ok(cx.known(i)?.and_then(|t| t.data.first().copied()).map_or(unbounded, |v| v as f32))
        };
        (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
    };
    let x = cx.value(0)?;
    cx.emit_out(Op::Unary(UnaryOp::Clip { min, max }), &[x])
}

/// Clip with a bound computed at run time: `min(max(x, min), max)` of engine values.
fn import_run_time_bounds(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let mut y = cx.value(0)?;
    for (i, op) in [(1, BinaryOp::Max), (2, BinaryOp::Min)] {
        if cx.has_input(i) {
            let bound = cx.value(i)?;
            y = cx.emit(Op::Binary(op), &[y, bound])?;
        }
    }
    cx.set(y)
}
