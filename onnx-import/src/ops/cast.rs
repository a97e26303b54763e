//! Cast and CastLike: a tensor converted to another element type (floats truncate toward zero to
//! integers; any nonzero value is a true boolean). At run time the engine's [`Cast`] to float32,
//! int64, int32 (and narrower integers, held as int32) or bool; on constants, a fold. CastLike
//! takes the type of its second input.
//!
//! Opset history: Cast 1 names the type as a string (`"FLOAT"`, `"INT64"`, ...); from 6 it is the
//! TensorProto element-type number; 9, 13, 19 (`saturate`, for float8 only), 21 and 23 widen the
//! types. CastLike from 15 (19, 21, 23 widen the types).

use distk_engine::{Cast, DType, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::model::engine_dtype;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec};
use crate::tensor::{ConstTensor, elem};

/// Cast and CastLike.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "Cast",
        spec: OpSpec {
            attrs: &[
                AttrSpec::required("to").opsets(1, Some(5)),
                AttrSpec::required("to").opsets(6, None),
                AttrSpec::int("saturate", 1).opsets(19, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: Some(fold),
    },
    OpDef {
        op_type: "CastLike",
        spec: OpSpec {
            since: 15,
            inputs: &[InputSpec::value("input"), InputSpec::value("target_type")],
            attrs: &[AttrSpec::int("saturate", 1).opsets(19, None)],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: Some(fold),
    },
];

/// The target element type as a TensorProto number (Cast's `to`).
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

/// The engine type of `to`, or why the engine cannot hold it.
fn engine_target(cx: &NodeCx<'_>, to: i64) -> Result<DType> {
    if is_float_type(to) {
        // float16 and double compute as float32 in the engine.
        return Ok(DType::F32);
    }
    i32::try_from(to).ok().and_then(engine_dtype).ok_or_else(|| {
        cx.err(format!(
            "casting to element type {to} ({}) is not supported: the engine holds float32, int64, int32 and bool",
            i32::try_from(to).map_or("unknown", elem::name)
        ))
    })
}

fn is_float_type(to: i64) -> bool {
    matches!(to, 1 | 10 | 11 | 16)
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let to = if cx.def.op_type == "CastLike" { cx.dtype(1)? } else { engine_target(cx, target(cx)?)? };
    let x = cx.value(0)?;
    if cx.value_dtype(x) == to {
        return cx.set(x);
    }
    cx.emit_out(Op::Cast(Cast { to }), &[x])
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let mut x = cx.arg(c, 0)?.clone();
    let (is_float, is_bool) = if cx.def.op_type == "CastLike" {
        (cx.arg(c, 1)?.is_float, false)
    } else {
        let to = target(cx)?;
        (is_float_type(to), to == i64::from(elem::BOOL))
    };
    x.is_float = is_float;
    if is_bool {
        x.data.iter_mut().for_each(|v| *v = f64::from(u8::from(*v != 0.0)));
    } else if !x.is_float {
        x.data.iter_mut().for_each(|v| *v = v.trunc());
    }
    Ok(x)
}
