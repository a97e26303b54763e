//! Softmax and LogSoftmax.
//!
//! Opset history: before 13 the input is coerced to 2-d, `[prod(dims before axis), prod(dims from
//! axis)]`, and normalised over the whole second dim (`axis` default 1); from 13 it normalises
//! along `axis` alone (default -1). The importer keeps both semantics.

use distk_engine::{Op, Softmax};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, OpDef, OpSpec};
use crate::tensor::numel;

const SPEC: OpSpec = OpSpec {
    attrs: &[AttrSpec::int("axis", 1).opsets(1, Some(12)), AttrSpec::int("axis", -1).opsets(13, None)],
    ..OpSpec::DEFAULT
};

/// Softmax and LogSoftmax.
pub static OPS: &[OpDef] = &[
    OpDef { op_type: "Softmax", spec: SPEC, import: Some(import), fold: None },
    OpDef { op_type: "LogSoftmax", spec: SPEC, import: Some(import), fold: None },
];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let log = cx.def.op_type == "LogSoftmax";
    let s = cx.shape(0)?;
    let axis = cx.axis(cx.int("axis")?, s.len())?;
    let x = cx.value(0)?;
    if cx.opset < 13 {
        let (outer, inner) = s.split_at(axis);
        let rows = vec![numel(outer).map_err(|e| cx.err(e))?, numel(inner).map_err(|e| cx.err(e))?];
        let flat = cx.reshape(x, rows)?;
        let y = cx.emit(Op::Softmax(Softmax { axis: 1, log }), &[flat])?;
        let y = cx.reshape(y, s)?;
        return cx.set(y);
    }
    cx.emit_out(Op::Softmax(Softmax { axis, log }), &[x])
}
