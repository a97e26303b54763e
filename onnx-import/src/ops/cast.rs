//! Cast: a constant to any element type the importer holds (integers truncate, booleans are 0 or 1);
//! a run-time tensor only to float32 (the engine computes in float32: the cast is then the identity).
//!
//! Opset history: 1 names the type as a string (`"FLOAT"`, `"INT64"`, ...); from 6 it is the
//! TensorProto element-type number; 9, 13, 19 (`saturate`, for float8 only), 21 and 23 widen the
//! types.

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{AttrSpec, Consts, OpDef, OpSpec};
use crate::tensor::{ConstTensor, elem};

/// Cast.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Cast",
    spec: OpSpec {
        attrs: &[AttrSpec::required("to").opsets(1, Some(5)), AttrSpec::required("to").opsets(6, None)],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

/// The target element type as a TensorProto number.
fn target(cx: &NodeCx<'_>) -> Result<i64> {
    if cx.opset >= 6 {
        return cx.int("to");
    }
    let names = [
        "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32",
        "UINT64",
    ];
    let name = cx.string("to")?;
    let at = names.iter().position(|n| n.eq_ignore_ascii_case(&name));
    at.map(|i| i as i64 + 1).ok_or_else(|| cx.err(format!("unknown element type `{name}`")))
}

fn is_float_type(to: i64) -> bool {
    matches!(to, 1 | 10 | 11 | 16)
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let to = target(cx)?;
    if to != i64::from(elem::FLOAT) {
        return Err(cx.err(format!("casting a run-time tensor to element type {to} is not supported (only float32)")));
    }
    let x = cx.value(0)?;
    cx.set(x)
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let to = target(cx)?;
    let mut x = cx.arg(c, 0)?.clone();
    x.is_float = is_float_type(to);
    if to == i64::from(elem::BOOL) {
        x.data.iter_mut().for_each(|v| *v = f64::from(u8::from(*v != 0.0)));
    } else if !x.is_float {
        x.data.iter_mut().for_each(|v| *v = v.trunc());
    }
    Ok(x)
}
