//! ArgMax and ArgMin: the int64 position of the largest (smallest) entry along an axis, the
//! engine's [`ArgReduce`].
//!
//! Opset history: 1; 11 allows a negative axis; 12 adds `select_last_index`; 13 widens the types.

use distk_engine::{ArgReduce, Op};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, OpDef, OpSpec};

const ATTRS: &[AttrSpec] =
    &[AttrSpec::int("axis", 0), AttrSpec::int("keepdims", 1), AttrSpec::int("select_last_index", 0).opsets(12, None)];

/// ArgMax, ArgMin.
pub static OPS: &[OpDef] = &[
    OpDef { op_type: "ArgMax", spec: OpSpec { attrs: ATTRS, ..OpSpec::DEFAULT }, import: Some(import), fold: None },
    OpDef { op_type: "ArgMin", spec: OpSpec { attrs: ATTRS, ..OpSpec::DEFAULT }, import: Some(import), fold: None },
];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let axis = cx.axis(cx.int("axis")?, cx.shape(0)?.len())?;
    let keepdims = cx.int("keepdims")? != 0;
    let select_last = cx.declares("select_last_index") && cx.int("select_last_index")? != 0;
    let max = cx.def.op_type == "ArgMax";
    let x = cx.value(0)?;
    cx.emit_out(Op::ArgReduce(ArgReduce { axis, keepdims, select_last, max }), &[x])
}
