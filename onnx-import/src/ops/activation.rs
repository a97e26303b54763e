//! The elementwise functions of one tensor that map onto one engine [`UnaryOp`] each: Relu,
//! LeakyRelu, Elu, Selu, Sigmoid, HardSigmoid, Tanh, Softplus, Exp, Log, Sqrt, Neg, Abs, Erf,
//! Floor, Ceil, Round, Sign, Softsign, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh,
//! Atanh.
//!
//! Opset history: most exist from opset 1, whose `consumed_inputs` attribute (dropped at 6) is
//! ignored; Sin, Cos, Tan, Asin, Acos and Atan from 7, the hyperbolic ones from 9, Erf and Sign from 9, Round from 11; later versions (6, 13, 14, 16,
//! 22) only widen the element types. The attribute defaults never changed. Neg also folds on
//! constants (shape arithmetic negates indices); Floor, Ceil and Round fold too.

use distk_engine::{Op, UnaryOp};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{AttrSpec, Consts, FoldFn, OpDef, OpSpec};
use crate::tensor::ConstTensor;

const fn activation(op_type: &'static str, attrs: &'static [AttrSpec], fold: Option<FoldFn>) -> OpDef {
    OpDef { op_type, spec: OpSpec { attrs, ..OpSpec::DEFAULT }, import: Some(import), fold }
}

/// The activations.
pub static OPS: &[OpDef] = &[
    activation("Relu", &[], None),
    activation("LeakyRelu", &[AttrSpec::float("alpha", 0.01)], None),
    activation("Elu", &[AttrSpec::float("alpha", 1.0)], None),
    activation("Selu", &[AttrSpec::float("alpha", 1.673_263_2), AttrSpec::float("gamma", 1.050_701)], None),
    activation("Sigmoid", &[], None),
    activation("HardSigmoid", &[AttrSpec::float("alpha", 0.2), AttrSpec::float("beta", 0.5)], None),
    activation("Tanh", &[], None),
    activation("Softplus", &[], None),
    activation("Exp", &[], None),
    activation("Log", &[], None),
    activation("Sqrt", &[], None),
    activation("Neg", &[], Some(fold_neg)),
    activation("Abs", &[], None),
    activation("Erf", &[], None),
    activation("Floor", &[], Some(fold_rounding)),
    activation("Ceil", &[], Some(fold_rounding)),
    activation("Round", &[], Some(fold_rounding)),
    activation("Sign", &[], None),
    activation("Softsign", &[], None),
    activation("Sin", &[], None),
    activation("Cos", &[], None),
    activation("Tan", &[], None),
    activation("Asin", &[], None),
    activation("Acos", &[], None),
    activation("Atan", &[], None),
    activation("Sinh", &[], None),
    activation("Cosh", &[], None),
    activation("Asinh", &[], None),
    activation("Acosh", &[], None),
    activation("Atanh", &[], None),
];

/// The engine function of the node.
fn unary(cx: &NodeCx<'_>) -> Result<UnaryOp> {
    Ok(match cx.def.op_type {
        "Relu" => UnaryOp::Relu,
        "LeakyRelu" => UnaryOp::LeakyRelu { alpha: cx.float("alpha")? },
        "Elu" => UnaryOp::Elu { alpha: cx.float("alpha")? },
        "Selu" => UnaryOp::Selu { alpha: cx.float("alpha")?, gamma: cx.float("gamma")? },
        "Sigmoid" => UnaryOp::Sigmoid,
        "HardSigmoid" => UnaryOp::HardSigmoid { alpha: cx.float("alpha")?, beta: cx.float("beta")? },
        "Tanh" => UnaryOp::Tanh,
        "Softplus" => UnaryOp::Softplus,
        "Exp" => UnaryOp::Exp,
        "Log" => UnaryOp::Log,
        "Sqrt" => UnaryOp::Sqrt,
        "Neg" => UnaryOp::Neg,
        "Abs" => UnaryOp::Abs,
        "Erf" => UnaryOp::Erf,
        "Floor" => UnaryOp::Floor,
        "Ceil" => UnaryOp::Ceil,
        "Round" => UnaryOp::Round,
        "Sign" => UnaryOp::Sign,
        "Softsign" => UnaryOp::Softsign,
        "Sin" => UnaryOp::Sin,
        "Cos" => UnaryOp::Cos,
        "Tan" => UnaryOp::Tan,
        "Asin" => UnaryOp::Asin,
        "Acos" => UnaryOp::Acos,
        "Atan" => UnaryOp::Atan,
        "Sinh" => UnaryOp::Sinh,
        "Cosh" => UnaryOp::Cosh,
        "Asinh" => UnaryOp::Asinh,
        "Acosh" => UnaryOp::Acosh,
        "Atanh" => UnaryOp::Atanh,
        other => return Err(cx.err(format!("internal: {other} is not an activation"))),
    })
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let u = unary(cx)?;
    let x = cx.value(0)?;
    cx.emit_out(Op::Unary(u), &[x])
}

fn fold_neg(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let mut x = cx.arg(c, 0)?.clone();
    x.data.iter_mut().for_each(|v| *v = -*v);
    Ok(x)
}

fn fold_rounding(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let u = unary(cx)?;
    let mut x = cx.arg(c, 0)?.clone();
    x.data.iter_mut().for_each(|v| *v = u.apply(*v));
    Ok(x)
}
