//! Normalizations decomposed into engine reductions and elementwise ops (gradients by autodiff):
//! RMSNormalization `x / sqrt(mean(x^2) + epsilon) * scale` over the dims from `axis` on;
//! InstanceNormalization (per sample and channel over the spatial dims, then `scale`, `B` per
//! channel); GroupNormalization (per sample over groups of channels and the spatial dims, then
//! `scale`, `bias` per group (opset 18) or per channel (21)); LpNormalization `x / ||x||_p` along
//! `axis` (p 1 or 2; a zero norm leaves the row 0); MeanVarianceNormalization
//! `(x - mean) / (sqrt(var) + 1e-9)` over `axes` (default 0, 2, 3). Variances are population
//! variances.
//!
//! Opset history: MeanVarianceNormalization 9 (13 widens the types); RMSNormalization 23; InstanceNormalization 1 and 6 (types); GroupNormalization
//! 18, and 21 (scale and bias per channel, `stash_type`); LpNormalization 1 (22: types).

use distk_engine::{BinaryOp, Op, Reduce, ReduceOp, UnaryOp, ValueId, Where};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

const X_SCALE_B: &[InputSpec] = &[InputSpec::value("X"), InputSpec::value("scale"), InputSpec::value("B")];
const Y: &[OutputSpec] = &[OutputSpec::produced("Y")];

const fn three_inputs(op_type: &'static str, since: i64, attrs: &'static [AttrSpec]) -> OpDef {
    OpDef {
        op_type,
        spec: OpSpec { since, inputs: X_SCALE_B, outputs: Y, attrs, ..OpSpec::DEFAULT },
        import: Some(import),
        fold: None,
    }
}

/// RMSNormalization, InstanceNormalization, GroupNormalization, LpNormalization,
/// MeanVarianceNormalization.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "RMSNormalization",
        spec: OpSpec {
            since: 23,
            inputs: &[InputSpec::value("X"), InputSpec::value("scale")],
            outputs: &[OutputSpec::produced("Y")],
            attrs: &[AttrSpec::int("axis", -1), AttrSpec::float("epsilon", 1e-5), AttrSpec::int("stash_type", 1)],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    three_inputs("InstanceNormalization", 6, &[AttrSpec::float("epsilon", 1e-5)]),
    three_inputs(
        "GroupNormalization",
        18,
        &[
            AttrSpec::float("epsilon", 1e-5),
            AttrSpec::required("num_groups"),
            AttrSpec::int("stash_type", 1).opsets(21, None),
        ],
    ),
    OpDef {
        op_type: "LpNormalization",
        spec: OpSpec { attrs: &[AttrSpec::int("axis", -1), AttrSpec::int("p", 2)], ..OpSpec::DEFAULT },
        import: Some(import),
        fold: None,
    },
    OpDef {
        op_type: "MeanVarianceNormalization",
        spec: OpSpec { since: 9, attrs: &[AttrSpec::new("axes", AttrDefault::Ints(&[0, 2, 3]))], ..OpSpec::DEFAULT },
        import: Some(import),
        fold: None,
    },
];

fn bin(cx: &mut ImportCx<'_, '_>, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId> {
    cx.emit(Op::Binary(op), &[a, b])
}

fn mean(cx: &mut ImportCx<'_, '_>, x: ValueId, axes: &[usize]) -> Result<ValueId> {
    cx.emit(Op::Reduce(Reduce { op: ReduceOp::Mean, axes: axes.to_vec(), keepdims: true }), &[x])
}

/// `(x - mean) / sqrt(var + eps)` over `axes` (population variance).
fn standardize(cx: &mut ImportCx<'_, '_>, x: ValueId, axes: &[usize], epsilon: f32) -> Result<ValueId> {
    let m = mean(cx, x, axes)?;
    let d = bin(cx, BinaryOp::Sub, x, m)?;
    let sq = bin(cx, BinaryOp::Mul, d, d)?;
    let var = mean(cx, sq, axes)?;
    let eps = cx.constant("epsilon", vec![], vec![epsilon])?;
    let v = bin(cx, BinaryOp::Add, var, eps)?;
    let std = cx.emit(Op::Unary(UnaryOp::Sqrt), &[v])?;
    bin(cx, BinaryOp::Div, d, std)
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let x = cx.value(0)?;
    let y = match cx.def.op_type {
        "RMSNormalization" => {
            let axis = cx.axis(cx.int("axis")?, s.len())?;
            let axes: Vec<usize> = (axis..s.len()).collect();
            let sq = bin(cx, BinaryOp::Mul, x, x)?;
            let ms = mean(cx, sq, &axes)?;
            let eps = cx.constant("epsilon", vec![], vec![cx.float("epsilon")?])?;
            let v = bin(cx, BinaryOp::Add, ms, eps)?;
            let r = cx.emit(Op::Unary(UnaryOp::Sqrt), &[v])?;
            let n = bin(cx, BinaryOp::Div, x, r)?;
            let scale = cx.value(1)?;
            bin(cx, BinaryOp::Mul, n, scale)?
        }
        "InstanceNormalization" => {
            if s.len() < 3 {
                return Err(cx.err(format!("input {s:?} has no spatial dims")));
            }
            let axes: Vec<usize> = (2..s.len()).collect();
            let n = standardize(cx, x, &axes, cx.float("epsilon")?)?;
            let mut per_channel = vec![1; s.len()];
            per_channel[1] = s[1];
            let (scale, b) = (cx.value(1)?, cx.value(2)?);
            let scale = cx.reshape(scale, per_channel.clone())?;
            let b = cx.reshape(b, per_channel)?;
            let y = bin(cx, BinaryOp::Mul, n, scale)?;
            bin(cx, BinaryOp::Add, y, b)?
        }
        "GroupNormalization" => {
            let groups =
                usize::try_from(cx.int("num_groups")?).ok().filter(|&g| g > 0 && s.len() >= 2 && s[1] % g == 0);
            let g = groups.ok_or_else(|| cx.err(format!("num_groups does not divide the {} channels", s[1])))?;
            let rest: usize = s[2..].iter().product();
            let grouped = cx.reshape(x, vec![s[0], g, s[1] / g * rest])?;
            let n = standardize(cx, grouped, &[2], cx.float("epsilon")?)?;
            let (scale, b) = (cx.value(1)?, cx.value(2)?);
            if cx.opset < 21 {
                let scale = cx.reshape(scale, vec![1, g, 1])?;
                let b = cx.reshape(b, vec![1, g, 1])?;
                let y = bin(cx, BinaryOp::Mul, n, scale)?;
                let y = bin(cx, BinaryOp::Add, y, b)?;
                cx.reshape(y, s.clone())?
            } else {
                let y = cx.reshape(n, s.clone())?;
                let mut per_channel = vec![1; s.len()];
                per_channel[1] = s[1];
                let scale = cx.reshape(scale, per_channel.clone())?;
                let b = cx.reshape(b, per_channel)?;
                let y = bin(cx, BinaryOp::Mul, y, scale)?;
                bin(cx, BinaryOp::Add, y, b)?
            }
        }
        "MeanVarianceNormalization" => {
            let mut axes = Vec::new();
            for a in cx.ints_opt("axes")?.unwrap_or_default() {
                axes.push(cx.axis(a, s.len())?);
            }
            axes.sort_unstable();
            axes.dedup();
            if axes.is_empty() {
                return Err(cx.err("no axes to normalise over"));
            }
            let m = mean(cx, x, &axes)?;
            let d = bin(cx, BinaryOp::Sub, x, m)?;
            let sq = bin(cx, BinaryOp::Mul, d, d)?;
            let var = mean(cx, sq, &axes)?;
            let std = cx.emit(Op::Unary(UnaryOp::Sqrt), &[var])?;
            let eps = cx.constant("epsilon", vec![], vec![1e-9])?;
            let den = bin(cx, BinaryOp::Add, std, eps)?;
            bin(cx, BinaryOp::Div, d, den)?
        }
        _ => {
            let axis = cx.axis(cx.int("axis")?, s.len())?;
            let p = cx.int("p")?;
            let norm = match p {
                1 => {
                    let a = cx.emit(Op::Unary(UnaryOp::Abs), &[x])?;
                    cx.emit(Op::Reduce(Reduce { op: ReduceOp::Sum, axes: vec![axis], keepdims: true }), &[a])?
                }
                2 => {
                    let sq = bin(cx, BinaryOp::Mul, x, x)?;
                    let t =
                        cx.emit(Op::Reduce(Reduce { op: ReduceOp::Sum, axes: vec![axis], keepdims: true }), &[sq])?;
                    cx.emit(Op::Unary(UnaryOp::Sqrt), &[t])?
                }
                other => return Err(cx.err(format!("p = {other}: LpNormalization takes 1 or 2"))),
            };
            // A zero norm divides by 1 (the row stays 0), as ONNX's reference does.
            let zero = cx.constant("zero", vec![], vec![0.0])?;
            let one = cx.constant("one", vec![], vec![1.0])?;
            let is_zero = bin(cx, BinaryOp::Equal, norm, zero)?;
            let safe = cx.emit(Op::Where(Where), &[is_zero, one, norm])?;
            bin(cx, BinaryOp::Div, x, safe)?
        }
    };
    cx.set(y)
}
