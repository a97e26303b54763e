//! MaxPool, AveragePool and LpPool (1, 2 or 3 spatial dims). LpPool, `(sum over the window of
//! |x|^p)^(1/p)` with zero padding, is decomposed: `|x|^p` (`x * x` for p 2), the engine's average
//! pool counting the padding times the kernel size (the window sum; with `ceil_mode` the end
//! padding is set to cover the last window, so every window holds the whole kernel), then the
//! p-th root (a square root for p 2); its gradient is autodiff's.
//!
//! Opset history: MaxPool 1; 8 adds the `Indices` output (the engine's `PoolArgMax`: flat positions,
//! row-major, or column-major within each plane with `storage_order=1`) and `storage_order`; 10 adds
//! `dilations` and `ceil_mode`;
//! 11, 12 and 22 widen types and clarify padding. AveragePool 1; 7 adds `count_include_pad`; 10
//! adds `ceil_mode`; 19 adds `dilations`; 22 widens the types. LpPool 1 (a float `p`, not
//! handled); 2 makes `p` an integer; 11 clarifies the padding; 18 adds `dilations` and `ceil_mode`;
//! 22 widens the types.

use distk_engine::{BinaryOp, Op, PoolArgMax, PoolAttrs, PoolKind, UnaryOp};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, OpDef, OpSpec, OutputSpec};
use crate::ops::window::{WINDOW_ATTRS, Window, kernel_attr, window};

/// MaxPool, AveragePool and LpPool.
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
    OpDef {
        op_type: "LpPool",
        spec: OpSpec {
            since: 2,
            attrs: &[
                WINDOW_ATTRS[0],
                WINDOW_ATTRS[1],
                WINDOW_ATTRS[2],
                AttrSpec::required("kernel_shape"),
                AttrSpec::int("p", 2),
                AttrSpec::absent("dilations").opsets(18, None),
                AttrSpec::int("ceil_mode", 0).opsets(18, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import_lp),
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

fn import_lp(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    if !(3..=5).contains(&s.len()) {
        return Err(cx.err(format!("input {s:?}: 1, 2 or 3 spatial dims are supported")));
    }
    let kernel = kernel_attr(cx, s.len() - 2)?.ok_or_else(|| cx.err("attribute `kernel_shape` is required"))?;
    let p = cx.int("p")?;
    if p < 1 {
        return Err(cx.err(format!("p = {p}: LpPool takes a positive p")));
    }
    let ceil_mode = int_since(cx, "ceil_mode", 0)? == 1;
    let Window { kernel, strides, dilations, pads_begin, mut pads_end } = window(cx, &s[2..], kernel)?;
    let overflow = || cx.err("window sizes overflow");
    let mut taps: usize = 1;
    for i in 0..kernel.len() {
        taps = taps.checked_mul(kernel[i]).ok_or_else(overflow)?;
        let input = s[2 + i];
        let pads = pads_begin[i].checked_add(pads_end[i]).ok_or_else(overflow)?;
        let padded = input.checked_add(pads).ok_or_else(overflow)?;
        // `window` checked that the kernel's span does not overflow.
        let span = dilations[i] * (kernel[i] - 1) + 1;
        if padded < span {
            return Err(cx.err(format!("kernel {kernel:?} does not fit input {s:?} with its padding")));
        }
        if ceil_mode {
            // The output ceil_mode gives (as ONNX's reference: the last window must start in the
            // input or its begin padding), reached without it by padding the end with zeros, which
            // add nothing to a sum.
            let mut windows = (padded - span).div_ceil(strides[i]);
            let covered = input + pads_begin[i];
            if windows > 0 && windows.checked_mul(strides[i]).is_none_or(|start| start >= covered) {
                windows -= 1;
            }
            let need = windows.checked_mul(strides[i]).and_then(|v| v.checked_add(span)).ok_or_else(overflow)?;
            pads_end[i] = need.saturating_sub(covered);
        }
    }
    let x = cx.value(0)?;
    let pw = match p {
        1 => cx.emit(Op::Unary(UnaryOp::Abs), &[x])?,
        2 => cx.emit(Op::Binary(BinaryOp::Mul), &[x, x])?,
        _ => {
            let a = cx.emit(Op::Unary(UnaryOp::Abs), &[x])?;
            let e = cx.constant("p", vec![], vec![p as f32])?;
            cx.emit(Op::Binary(BinaryOp::Pow), &[a, e])?
        }
    };
    let kind = PoolKind::Average { count_include_pad: true };
    let attrs = PoolAttrs { kind, kernel, strides, dilations, pads_begin, pads_end, ceil_mode: false };
    let mean = cx.emit(Op::Pool(attrs), &[pw])?;
    let k = cx.constant("kernel_size", vec![], vec![taps as f32])?;
    let sum = cx.emit(Op::Binary(BinaryOp::Mul), &[mean, k])?;
    let y = match p {
        1 => sum,
        2 => cx.emit(Op::Unary(UnaryOp::Sqrt), &[sum])?,
        _ => {
            let e = cx.constant("inv_p", vec![], vec![1.0 / p as f32])?;
            cx.emit(Op::Binary(BinaryOp::Pow), &[sum, e])?
        }
    };
    cx.set(y)
}
