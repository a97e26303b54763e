//! OneHot: indices expanded along a new axis of `depth` entries (`values = [off, on]`), the
//! engine's [`OneHot`]. `depth` must be known at import (it sets the output's shape).
//!
//! Opset history: 9; 11 allows negative indices.

use distk_engine::{OneHot, Op};

use crate::context::ImportCx;
use crate::error::Result;
use crate::fold::norm_axis;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// OneHot.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "OneHot",
    spec: OpSpec {
        since: 9,
        inputs: &[InputSpec::value("indices"), InputSpec::known("depth"), InputSpec::value("values")],
        outputs: &[OutputSpec::produced("output")],
        attrs: &[AttrSpec::int("axis", -1)],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let depth = cx.require_known(1)?;
    let d = depth.data.first().copied().ok_or_else(|| cx.err("depth is empty"))?;
    if !(1.0..=16_777_216.0).contains(&d) {
        return Err(cx.err(format!("depth {d} must be a positive integer")));
    }
    let rank = cx.shape(0)?.len();
    let axis = norm_axis(cx.int("axis")?, rank + 1).map_err(|e| cx.err(e))?;
    let (idx, vals) = (cx.value(0)?, cx.value(2)?);
    cx.emit_out(Op::OneHot(OneHot { axis, depth: d as usize }), &[idx, vals])
}
