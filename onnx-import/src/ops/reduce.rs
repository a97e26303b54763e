//! The reductions over axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin and ReduceProd, the engine's
//! `Reduce` at run time (ReduceMax of a Keras GlobalMaxPooling), ReduceProd also folded on
//! constants (products of shape dims, as Keras 3 exports compute `N * T`).
//!
//! Opset history: `keepdims` (default 1) at every opset; the axes are an attribute until the
//! input form takes over (ReduceSum at 13, the others at 18), which adds
//! `noop_with_empty_axes` (default 0: no axes reduce everything); the input must be a constant or
//! an initializer. 11 allows negative axes; 13 and 18 otherwise widen the types.

use distk_engine::{BinaryOp, Op, Reduce, ReduceOp, UnaryOp};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::norm_axis;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::{ConstTensor, created_numel};

/// ReduceSum: the axes become an input at 13.
const SUM_SPEC: OpSpec = OpSpec {
    inputs: &[InputSpec::value("data"), InputSpec::known("axes").optional().since(13)],
    outputs: &[OutputSpec::produced("reduced")],
    attrs: &[
        AttrSpec::absent("axes").opsets(1, Some(12)),
        AttrSpec::int("keepdims", 1),
        AttrSpec::int("noop_with_empty_axes", 0).opsets(13, None),
    ],
    ..OpSpec::DEFAULT
};

/// ReduceMean, ReduceMax, ReduceMin and ReduceProd: the axes become an input at 18.
const MEAN_PROD_SPEC: OpSpec = OpSpec {
    inputs: &[InputSpec::value("data"), InputSpec::known("axes").optional().since(18)],
    outputs: &[OutputSpec::produced("reduced")],
    attrs: &[
        AttrSpec::absent("axes").opsets(1, Some(17)),
        AttrSpec::int("keepdims", 1),
        AttrSpec::int("noop_with_empty_axes", 0).opsets(18, None),
    ],
    ..OpSpec::DEFAULT
};

/// The reductions.
pub static OPS: &[OpDef] = &[
    OpDef { op_type: "ReduceMean", spec: MEAN_PROD_SPEC, import: Some(import), fold: None },
    OpDef { op_type: "ReduceSum", spec: SUM_SPEC, import: Some(import), fold: None },
    OpDef { op_type: "ReduceProd", spec: MEAN_PROD_SPEC, import: Some(import), fold: Some(fold_prod) },
    OpDef { op_type: "ReduceMax", spec: MEAN_PROD_SPEC, import: Some(import), fold: None },
    OpDef { op_type: "ReduceMin", spec: MEAN_PROD_SPEC, import: Some(import), fold: None },
    OpDef { op_type: "ReduceL1", spec: MEAN_PROD_SPEC, import: Some(import_composite), fold: None },
    OpDef { op_type: "ReduceL2", spec: MEAN_PROD_SPEC, import: Some(import_composite), fold: None },
    OpDef { op_type: "ReduceSumSquare", spec: MEAN_PROD_SPEC, import: Some(import_composite), fold: None },
    OpDef { op_type: "ReduceLogSum", spec: MEAN_PROD_SPEC, import: Some(import_composite), fold: None },
    OpDef { op_type: "ReduceLogSumExp", spec: MEAN_PROD_SPEC, import: Some(import_composite), fold: None },
];

/// The sorted, unique axes a node reduces over a tensor of `rank` dims (every one when none are
/// given), or `None` when it is the identity (`noop_with_empty_axes` with no axes).
fn reduced_axes(cx: &NodeCx<'_>, rank: usize, axes_input: Option<&ConstTensor>) -> Result<Option<Vec<usize>>> {
    let axes = if cx.declares("axes") { cx.ints_opt("axes")? } else { axes_input.map(ConstTensor::as_i64) };
    match axes {
        Some(v) if !v.is_empty() => {
            let mut ax: Vec<usize> =
                v.iter().map(|&a| norm_axis(a, rank)).collect::<std::result::Result<_, _>>().map_err(|e| cx.err(e))?;
            ax.sort_unstable();
            ax.dedup();
            Ok(Some(ax))
        }
        _ if cx.declares("noop_with_empty_axes") && cx.int("noop_with_empty_axes")? == 1 => Ok(None),
        _ => Ok(Some((0..rank).collect())),
    }
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let axes_input = if cx.declares("axes") { None } else { cx.known(1)? };
    let Some(axes) = reduced_axes(cx, s.len(), axes_input.as_ref())? else {
        let x = cx.value(0)?;
        return cx.set(x);
    };
    let op = match cx.def.op_type {
        "ReduceMean" => ReduceOp::Mean,
        "ReduceMax" => ReduceOp::Max,
        "ReduceMin" => ReduceOp::Min,
        "ReduceProd" => ReduceOp::Prod,
        _ => ReduceOp::Sum,
    };
    let keepdims = cx.int("keepdims")? == 1;
    let x = cx.value(0)?;
    cx.emit_out(Op::Reduce(Reduce { op, axes, keepdims }), &[x])
}

fn fold_prod(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let x = cx.arg(c, 0)?;
    let Some(axes) = reduced_axes(cx, x.shape.len(), c.opt(1))? else { return Ok(x.clone()) };
    let kept: Vec<usize> = x.shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let mut data = vec![1.0; created_numel(&kept).map_err(|e| cx.err(e))?];
    let src = distk_engine::shape::contiguous_strides(&x.shape);
    let dst = distk_engine::shape::broadcast_strides(&kept, &x.shape);
    let mut short = false;
    distk_engine::cpu::kernels::for_each_index(&x.shape, [&src, &dst], |[i, j]| {
        match (x.data.get(i), data.get_mut(j)) {
            (Some(v), Some(acc)) => *acc *= v,
            _ => short = true,
        }
    });
    if short {
        return Err(cx.err("a constant's data does not match its shape"));
    }
    let shape = if cx.int("keepdims")? == 1 {
        kept
    } else {
        x.shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
    };
    Ok(ConstTensor { shape, data, is_float: x.is_float })
}

/// ReduceL1 (sum of |x|), ReduceL2 (square root of the sum of squares), ReduceSumSquare,
/// ReduceLogSum (log of the sum) and ReduceLogSumExp (log of the sum of exp, shifted by the max for
/// stability), from the engine's reductions and elementwise ops.
fn import_composite(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let axes_input = if cx.declares("axes") { None } else { cx.known(1)? };
    let Some(axes) = reduced_axes(cx, s.len(), axes_input.as_ref())? else {
        let x = cx.value(0)?;
        return cx.set(x);
    };
    let keepdims = cx.int("keepdims")? == 1;
    let out_shape: Vec<usize> = s
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| if axes.contains(&i) { keepdims.then_some(1) } else { Some(d) })
        .collect();
    let sum = |axes: &Vec<usize>| Op::Reduce(Reduce { op: ReduceOp::Sum, axes: axes.clone(), keepdims: true });
    let x = cx.value(0)?;
    let y = match cx.def.op_type {
        "ReduceL1" => {
            let a = cx.emit(Op::Unary(UnaryOp::Abs), &[x])?;
            cx.emit(sum(&axes), &[a])?
        }
        "ReduceL2" | "ReduceSumSquare" => {
            let sq = cx.emit(Op::Binary(BinaryOp::Mul), &[x, x])?;
            let t = cx.emit(sum(&axes), &[sq])?;
            if cx.def.op_type == "ReduceL2" { cx.emit(Op::Unary(UnaryOp::Sqrt), &[t])? } else { t }
        }
        "ReduceLogSum" => {
            let t = cx.emit(sum(&axes), &[x])?;
            cx.emit(Op::Unary(UnaryOp::Log), &[t])?
        }
        _ => {
            let m = cx.emit(Op::Reduce(Reduce { op: ReduceOp::Max, axes: axes.clone(), keepdims: true }), &[x])?;
            let d = cx.emit(Op::Binary(BinaryOp::Sub), &[x, m])?;
            let e = cx.emit(Op::Unary(UnaryOp::Exp), &[d])?;
            let t = cx.emit(sum(&axes), &[e])?;
            let l = cx.emit(Op::Unary(UnaryOp::Log), &[t])?;
            cx.emit(Op::Binary(BinaryOp::Add), &[l, m])?
        }
    };
    let y = cx.reshape(y, out_shape)?;
    cx.set(y)
}
