//! Activations decomposed into engine ops (gradients by autodiff): Swish `x * sigmoid(alpha x)`,
//! Mish `x * tanh(softplus(x))`, ThresholdedRelu `x if x > alpha else 0`, Celu
//! `alpha * elu(x / alpha)`, Shrink (`x - bias` above `lambd`, `x + bias` below `-lambd`, else 0),
//! PRelu `max(x, 0) + slope * min(x, 0)` (slope broadcast), Hardmax (1 at the first maximum along
//! the axis, 0 elsewhere; before opset 13 over the input coerced to 2-d at the axis), SwiGLU
//! `a * sigmoid(alpha a) * b` (A and B of one shape, no broadcasting).
//!
//! Opset history: SwiGLU 28; Swish 24; Mish 18; ThresholdedRelu 10; Celu 12; Shrink 9; PRelu 1 (7 and 9
//! broadcast the slope); Hardmax 1 and 11 (2-d coercion), 13 (one axis).

use distk_engine::{ArgReduce, BinaryOp, DType, OneHot, Op, UnaryOp, ValueId, Where};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::numel;

const fn composite(op_type: &'static str, since: i64, attrs: &'static [AttrSpec]) -> OpDef {
    OpDef { op_type, spec: OpSpec { since, attrs, ..OpSpec::DEFAULT }, import: Some(import), fold: None }
}

/// Swish, SwiGLU, Mish, ThresholdedRelu, Celu, Shrink, PRelu, Hardmax.
pub static OPS: &[OpDef] = &[
    composite("Swish", 24, &[AttrSpec::float("alpha", 1.0)]),
    OpDef {
        op_type: "SwiGLU",
        spec: OpSpec {
            since: 28,
            inputs: &[InputSpec::value("A"), InputSpec::value("B")],
            outputs: &[OutputSpec::produced("Y")],
            attrs: &[AttrSpec::float("alpha", 1.0)],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    composite("Mish", 18, &[]),
    composite("ThresholdedRelu", 10, &[AttrSpec::float("alpha", 1.0)]),
    composite("Celu", 12, &[AttrSpec::float("alpha", 1.0)]),
    composite("Shrink", 9, &[AttrSpec::float("bias", 0.0), AttrSpec::float("lambd", 0.5)]),
    OpDef {
        op_type: "PRelu",
        spec: OpSpec {
            since: 7,
            inputs: &[InputSpec::value("X"), InputSpec::value("slope")],
            outputs: &[OutputSpec::produced("Y")],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    OpDef {
        op_type: "Hardmax",
        spec: OpSpec {
            attrs: &[AttrSpec::int("axis", 1).opsets(1, Some(12)), AttrSpec::int("axis", -1).opsets(13, None)],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
];

fn un(cx: &mut ImportCx<'_, '_>, u: UnaryOp, x: ValueId) -> Result<ValueId> {
    cx.emit(Op::Unary(u), &[x])
}

fn bin(cx: &mut ImportCx<'_, '_>, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId> {
    cx.emit(Op::Binary(op), &[a, b])
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let x = cx.value(0)?;
    let y = match cx.def.op_type {
        "Swish" => {
            let a = cx.constant("alpha", vec![], vec![cx.float("alpha")?])?;
            let ax = bin(cx, BinaryOp::Mul, x, a)?;
            let s = un(cx, UnaryOp::Sigmoid, ax)?;
            bin(cx, BinaryOp::Mul, x, s)?
        }
        "SwiGLU" => {
            let (sa, sb) = (cx.shape(0)?, cx.shape(1)?);
            if sa != sb {
                return Err(cx.err(format!("A {sa:?} and B {sb:?} differ (SwiGLU does not broadcast)")));
            }
            let a = cx.constant("alpha", vec![], vec![cx.float("alpha")?])?;
            let ax = bin(cx, BinaryOp::Mul, x, a)?;
            let s = un(cx, UnaryOp::Sigmoid, ax)?;
            let swish = bin(cx, BinaryOp::Mul, x, s)?;
            let b = cx.value(1)?;
            bin(cx, BinaryOp::Mul, swish, b)?
        }
        "Mish" => {
            let sp = un(cx, UnaryOp::Softplus, x)?;
            let t = un(cx, UnaryOp::Tanh, sp)?;
            bin(cx, BinaryOp::Mul, x, t)?
        }
        "ThresholdedRelu" => {
            let a = cx.constant("alpha", vec![], vec![cx.float("alpha")?])?;
            let zero = cx.constant("zero", vec![], vec![0.0])?;
            let above = bin(cx, BinaryOp::Greater, x, a)?;
            cx.emit(Op::Where(Where), &[above, x, zero])?
        }
        "Celu" => {
            let alpha = cx.float("alpha")?;
            if alpha == 0.0 {
                return Err(cx.err("Celu with alpha 0 is undefined"));
            }
            let inv = cx.constant("inv_alpha", vec![], vec![1.0 / alpha])?;
            let a = cx.constant("alpha", vec![], vec![alpha])?;
            let t = bin(cx, BinaryOp::Mul, x, inv)?;
            let e = un(cx, UnaryOp::Elu { alpha: 1.0 }, t)?;
            bin(cx, BinaryOp::Mul, e, a)?
        }
        "Shrink" => {
            let (b, l) = (cx.float("bias")?, cx.float("lambd")?);
            let bias = cx.constant("bias", vec![], vec![b])?;
            let hi = cx.constant("lambd", vec![], vec![l])?;
            let lo = cx.constant("neg_lambd", vec![], vec![-l])?;
            let zero = cx.constant("zero", vec![], vec![0.0])?;
            let up = bin(cx, BinaryOp::Greater, x, hi)?;
            let down = bin(cx, BinaryOp::Less, x, lo)?;
            let xm = bin(cx, BinaryOp::Sub, x, bias)?;
            let xp = bin(cx, BinaryOp::Add, x, bias)?;
            let inner = cx.emit(Op::Where(Where), &[down, xp, zero])?;
            cx.emit(Op::Where(Where), &[up, xm, inner])?
        }
        "PRelu" => {
            let slope = cx.value(1)?;
            let zero = cx.constant("zero", vec![], vec![0.0])?;
            let pos = un(cx, UnaryOp::Relu, x)?;
            let neg = bin(cx, BinaryOp::Min, x, zero)?;
            let sn = bin(cx, BinaryOp::Mul, neg, slope)?;
            bin(cx, BinaryOp::Add, pos, sn)?
        }
        _ => return hardmax(cx, x),
    };
    cx.set(y)
}

/// Hardmax: OneHot of the ArgMax along the axis (the first maximum), as floats.
fn hardmax(cx: &mut ImportCx<'_, '_>, x: ValueId) -> Result<()> {
    let s = cx.shape(0)?;
    let axis = cx.axis(cx.int("axis")?, s.len())?;
    // Before opset 13 the input is coerced to 2-d at the axis.
    let (work, axis2) = if cx.opset < 13 {
        let rows = numel(&s[..axis]).map_err(|e| cx.err(e))?;
        let cols = numel(&s[axis..]).map_err(|e| cx.err(e))?;
        (cx.reshape(x, vec![rows, cols])?, 1)
    } else {
        (x, axis)
    };
    let depth = cx.value_shape(work)[axis2];
    let am =
        cx.emit(Op::ArgReduce(ArgReduce { axis: axis2, keepdims: false, select_last: false, max: true }), &[work])?;
    let vals = cx.typed_constant("values", vec![2], vec![0.0, 1.0], DType::F32)?;
    let y = cx.emit(Op::OneHot(OneHot { axis: axis2, depth }), &[am, vals])?;
    let y = cx.reshape(y, s)?;
    cx.set(y)
}
