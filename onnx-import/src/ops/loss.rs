//! The classification losses, decomposed into engine ops (gradients by autodiff).
//!
//! NegativeLogLikelihoodLoss over `input` `[N, C, d1, ...]` (log-probabilities) and integer
//! `target` `[N, d1, ...]`: `loss[n, d..] = -input[n, target[n, d..], d..] * w[n, d..]`, where
//! `w = weight[target]` (1 without `weight`) and `w = 0` where `target == ignore_index`. `reduction`
//! `none` keeps `loss`; `sum` sums it; `mean` divides that sum by `sum(w)` (by the element count
//! when there is neither `weight` nor `ignore_index`). Ignored targets may be negative or past `C`:
//! the import reads class 0 there (`Where(target == ignore_index, 0, target)`) and zeroes the
//! result. SoftmaxCrossEntropyLoss is NegativeLogLikelihoodLoss of `LogSoftmax(scores, axis 1)`,
//! whose log-probabilities are its optional second output `log_prob`.
//!
//! Opset history: both 12; 13 widens the types (NegativeLogLikelihoodLoss 22 too).

use distk_engine::{BinaryOp, DType, Gather, GatherElements, Op, Reduce, ReduceOp, Softmax, UnaryOp, ValueId, Where};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

const INPUTS: &[InputSpec] =
    &[InputSpec::value("input"), InputSpec::value("target"), InputSpec::value("weight").optional()];
const ATTRS: &[AttrSpec] = &[AttrSpec::absent("ignore_index"), AttrSpec::new("reduction", AttrDefault::Str("mean"))];

/// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "NegativeLogLikelihoodLoss",
        spec: OpSpec {
            since: 12,
            inputs: INPUTS,
            outputs: &[OutputSpec::produced("loss")],
            attrs: ATTRS,
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    OpDef {
        op_type: "SoftmaxCrossEntropyLoss",
        spec: OpSpec {
            since: 12,
            inputs: INPUTS,
            outputs: &[OutputSpec::produced("output"), OutputSpec::produced("log_prob")],
            attrs: ATTRS,
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
];

fn bin(cx: &mut ImportCx<'_, '_>, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId> {
    cx.emit(Op::Binary(op), &[a, b])
}

fn reduce_all(cx: &mut ImportCx<'_, '_>, op: ReduceOp, x: ValueId) -> Result<ValueId> {
    let axes: Vec<usize> = (0..cx.value_shape(x).len()).collect();
    cx.emit(Op::Reduce(Reduce { op, axes, keepdims: false }), &[x])
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    if s.len() < 2 {
        return Err(cx.err(format!("input {s:?} has no class dim (expected [N, C, d1, ...])")));
    }
    let mut target_shape = vec![s[0]];
    target_shape.extend_from_slice(&s[2..]);
    let ts = cx.shape(1)?;
    if ts != target_shape {
        return Err(cx.err(format!("target {ts:?} does not fit input {s:?} (expected {target_shape:?})")));
    }
    let target_dtype = cx.dtype(1)?;
    if !matches!(target_dtype, DType::I64 | DType::I32) {
        return Err(cx.err(format!("target is {target_dtype:?}; it must hold integers")));
    }
    if cx.has_input(2) {
        let ws = cx.shape(2)?;
        if ws != [s[1]] {
            return Err(cx.err(format!("weight {ws:?} does not fit {} classes", s[1])));
        }
    }
    let reduction = cx.string("reduction")?;
    if !matches!(reduction.as_str(), "none" | "sum" | "mean") {
        return Err(cx.err(format!("reduction `{reduction}` is not none, sum or mean")));
    }
    let ignore_index = cx.int_opt("ignore_index")?;

    let mut x = cx.value(0)?;
    if cx.def.op_type == "SoftmaxCrossEntropyLoss" {
        x = cx.emit(Op::Softmax(Softmax { axis: 1, log: true }), &[x])?;
        cx.set_output(1, x)?;
    }
    let target = cx.value(1)?;
    let zero = cx.constant("zero", vec![], vec![0.0])?;
    // The ignored positions, and the target with class 0 there (an ignore_index out of [0, C)
    // must not be read).
    let (ignored, target) = match ignore_index {
        Some(ii) => {
            let at = cx.typed_constant("ignore_index", vec![], vec![ii as f32], target_dtype)?;
            let first = cx.typed_constant("first_class", vec![], vec![0.0], target_dtype)?;
            let ignored = bin(cx, BinaryOp::Equal, target, at)?;
            let safe = cx.emit(Op::Where(Where), &[ignored, first, target])?;
            (Some(ignored), safe)
        }
        None => (None, target),
    };
    let mut idx_shape = target_shape.clone();
    idx_shape.insert(1, 1);
    let idx = cx.reshape(target, idx_shape)?;
    let picked = cx.emit(Op::GatherElements(GatherElements { axis: 1 }), &[x, idx])?;
    let picked = cx.reshape(picked, target_shape)?;
    let mut loss = cx.emit(Op::Unary(UnaryOp::Neg), &[picked])?;
    if let Some(ignored) = ignored {
        loss = cx.emit(Op::Where(Where), &[ignored, zero, loss])?;
    }
    // The weight of each position: weight[target], 0 where ignored; `None` when every one is 1.
    let w = if cx.has_input(2) {
        let weight = cx.value(2)?;
        let mut w = cx.emit(Op::Gather(Gather { axis: 0 }), &[weight, target])?;
        if let Some(ignored) = ignored {
            w = cx.emit(Op::Where(Where), &[ignored, zero, w])?;
        }
        loss = bin(cx, BinaryOp::Mul, loss, w)?;
        Some(w)
    } else if let Some(ignored) = ignored {
        let one = cx.constant("one", vec![], vec![1.0])?;
        Some(cx.emit(Op::Where(Where), &[ignored, zero, one])?)
    } else {
        None
    };
    let y = match (reduction.as_str(), w) {
        ("none", _) => loss,
        ("sum", _) => reduce_all(cx, ReduceOp::Sum, loss)?,
        (_, Some(w)) => {
            let total = reduce_all(cx, ReduceOp::Sum, loss)?;
            let count = reduce_all(cx, ReduceOp::Sum, w)?;
            bin(cx, BinaryOp::Div, total, count)?
        }
        (_, None) => reduce_all(cx, ReduceOp::Mean, loss)?,
    };
    cx.set(y)
}
