//! Gelu: `0.5 x (1 + erf(x / sqrt 2))`, or with `approximate="tanh"`
//! `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`, decomposed into engine ops.
//!
//! Opset history: 20.

use distk_engine::{BinaryOp, Op, UnaryOp, ValueId};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec, OpDef, OpSpec};

/// Gelu.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Gelu",
    spec: OpSpec { since: 20, attrs: &[AttrSpec::new("approximate", AttrDefault::Str("none"))], ..OpSpec::DEFAULT },
    import: Some(import),
    fold: None,
}];

fn mul(cx: &mut ImportCx<'_, '_>, a: ValueId, b: ValueId) -> Result<ValueId> {
    cx.emit(Op::Binary(BinaryOp::Mul), &[a, b])
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let approximate = cx.string("approximate")?;
    let x = cx.value(0)?;
    let inner = match approximate.as_str() {
        "none" => {
            let k = cx.constant("inv_sqrt2", vec![], vec![std::f32::consts::FRAC_1_SQRT_2])?;
            let t = mul(cx, x, k)?;
            cx.emit(Op::Unary(UnaryOp::Erf), &[t])?
        }
        "tanh" => {
            let c = cx.constant("c", vec![], vec![0.044_715])?;
            let k = cx.constant("sqrt_2_over_pi", vec![], vec![(2.0 / std::f32::consts::PI).sqrt()])?;
            let x2 = mul(cx, x, x)?;
            let x3 = mul(cx, x2, x)?;
            let cx3 = mul(cx, x3, c)?;
            let s = cx.emit(Op::Binary(BinaryOp::Add), &[x, cx3])?;
            let t = mul(cx, s, k)?;
            cx.emit(Op::Unary(UnaryOp::Tanh), &[t])?
        }
        other => return Err(cx.err(format!("approximate `{other}` is not one of none, tanh"))),
    };
    let one = cx.constant("one", vec![], vec![1.0])?;
    let half = cx.constant("half", vec![], vec![0.5])?;
    let p = cx.emit(Op::Binary(BinaryOp::Add), &[inner, one])?;
    let hx = mul(cx, x, half)?;
    let y = mul(cx, hx, p)?;
    cx.set(y)
}
