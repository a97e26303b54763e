//! GlobalAveragePool and GlobalMaxPool: the mean (the largest value) over every spatial dim, kept
//! as size 1. Opsets 1 and 22 (types).

use distk_engine::{Op, Reduce, ReduceOp};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{OpDef, OpSpec};

/// GlobalAveragePool, GlobalMaxPool.
pub static OPS: &[OpDef] = &[
    OpDef { op_type: "GlobalAveragePool", spec: OpSpec::DEFAULT, import: Some(import), fold: None },
    OpDef { op_type: "GlobalMaxPool", spec: OpSpec::DEFAULT, import: Some(import), fold: None },
];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    if s.len() < 3 {
        return Err(cx.err(format!("input {s:?} has no spatial dims")));
    }
    let op = if cx.def.op_type == "GlobalMaxPool" { ReduceOp::Max } else { ReduceOp::Mean };
    let x = cx.value(0)?;
    cx.emit_out(Op::Reduce(Reduce { op, axes: (2..s.len()).collect(), keepdims: true }), &[x])
}
