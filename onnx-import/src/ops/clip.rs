//! Clip: `min(max(x, min), max)`.
//!
//! Opset history: 1 and 6 take `min`/`max` as float attributes (default: unbounded); from 11 they
//! are optional inputs, which the importer needs as constants or initializers; 12 and 13 only
//! widen the types.

use distk_engine::{Op, UnaryOp};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec};

/// Clip.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Clip",
    spec: OpSpec {
        inputs: &[
            InputSpec::value("input"),
            InputSpec::known("min").optional().since(11),
            InputSpec::known("max").optional().since(11),
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
