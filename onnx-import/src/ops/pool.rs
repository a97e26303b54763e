//! MaxPool and AveragePool (1, 2 or 3 spatial dims).
//!
//! Opset history: MaxPool 1; 8 adds the `Indices` output (the engine's `PoolArgMax`: flat positions,
//! row-major, or column-major within each plane with `storage_order=1`) and `storage_order`; 10 adds
//! `dilations` and `ceil_mode`;
//! 11, 12 and 22 widen types and clarify padding. AveragePool 1; 7 adds `count_include_pad`; 10
//! adds `ceil_mode`; 19 adds `dilations`; 22 widens the types.

use distk_engine::{Op, PoolArgMax, PoolAttrs, PoolKind};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, OpDef, OpSpec, OutputSpec};
use crate::ops::window::{WINDOW_ATTRS, Window, kernel_attr, window};

/// MaxPool and AveragePool.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "MaxPool",
        spec: OpSpec {
            outputs: &[OutputSpec::produced("Y"), OutputSpec::produced("Indices")],
            attrs: &[
                WINDOW_ATTRS[0],
                WINDOW_ATTRS[1],
                WINDOW_ATTRS[2],
                AttrSpec::required("kernel_shape"),
                AttrSpec::absent("dilations").opsets(10, None),
                AttrSpec::int("ceil_mode", 0).opsets(10, None),
                AttrSpec::int("storage_order", 0).opsets(8, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    OpDef {
        op_type: "AveragePool",
        spec: OpSpec {
            attrs: &[
                WINDOW_ATTRS[0],
                WINDOW_ATTRS[1],
                WINDOW_ATTRS[2],
                AttrSpec::required("kernel_shape"),
                AttrSpec::int("count_include_pad", 0).opsets(7, None),
                AttrSpec::int("ceil_mode", 0).opsets(10, None),
                AttrSpec::absent("dilations").opsets(19, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
];

/// An attribute that exists only from some opset on: its value, or `default` before.
fn int_since(cx: &ImportCx<'_, '_>, name: &str, default: i64) -> Result<i64> {
    if cx.declares(name) { cx.int(name) } else { Ok(default) }
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    if !(3..=5).contains(&s.len()) {
        return Err(cx.err(format!("input {s:?}: 1, 2 or 3 spatial dims are supported")));
    }
    let kernel = kernel_attr(cx, s.len() - 2)?.ok_or_else(|| cx.err("attribute `kernel_shape` is required"))?;
    let kind = if cx.def.op_type == "MaxPool" {
        PoolKind::Max
    } else {
        PoolKind::Average { count_include_pad: int_since(cx, "count_include_pad", 0)? == 1 }
    };
    let ceil_mode = int_since(cx, "ceil_mode", 0)? == 1;
    let Window { kernel, strides, dilations, pads_begin, pads_end } = window(cx, &s[2..], kernel)?;
    let x = cx.value(0)?;
    let attrs = PoolAttrs { kind, kernel, strides, dilations, pads_begin, pads_end, ceil_mode };
    if cx.has_output(1) {
        let column_major = int_since(cx, "storage_order", 0)? == 1;
        let at = cx.emit(Op::PoolArgMax(PoolArgMax { attrs: attrs.clone(), column_major }), &[x])?;
        cx.set_output(1, at)?;
    }
    cx.emit_out(Op::Pool(attrs), &[x])
}
