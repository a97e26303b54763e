//! Slice: `starts[k]..ends[k]` by `steps[k]` along `axes[k]` (ends clamp; negative values count
//! from the end). On constants (shape sub-graphs) a constant fold with any steps; on run-time data
//! (or a parameter) one engine slice per sliced axis with step 1, and a gather at the visited
//! positions for any other step (negative ones reverse). The starts, ends, axes and steps must be known at import.
//!
//! Opset history: 1 takes `starts`, `ends` and `axes` as attributes; from 10 they are inputs,
//! with `steps`; 11 allows negative axes; 13 widens the types.

use distk_engine::{DType, Gather, Op, Slice};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::{norm_axis, strides};
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec};
use crate::tensor::{ConstTensor, created_numel};

/// Slice.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Slice",
    spec: OpSpec {
        inputs: &[
            InputSpec::value("data"),
            InputSpec::known("starts").since(10),
            InputSpec::known("ends").since(10),
            InputSpec::known("axes").optional().since(10),
            InputSpec::known("steps").optional().since(10),
        ],
        attrs: &[
            AttrSpec::required("starts").opsets(1, Some(9)),
            AttrSpec::required("ends").opsets(1, Some(9)),
            AttrSpec::absent("axes").opsets(1, Some(9)),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

/// A Slice's starts, ends, axes and steps, one of each per sliced axis.
struct SliceParams {
    starts: Vec<i64>,
    ends: Vec<i64>,
    axes: Vec<usize>,
    steps: Vec<i64>,
}

/// The parameters of a Slice of a rank-`rank` tensor: attributes below opset 10, inputs 1 to 4
/// (read by `input`, `None` when absent) from 10 on; checked for equal lengths and distinct axes.
fn params(cx: &NodeCx<'_>, rank: usize, input: impl Fn(usize) -> Result<Option<Vec<i64>>>) -> Result<SliceParams> {
    let (starts, ends, axes, steps) = if cx.opset < 10 {
        (
            cx.ints_opt("starts")?.unwrap_or_default(),
            cx.ints_opt("ends")?.unwrap_or_default(),
            cx.ints_opt("axes")?,
            None,
        )
    } else {
        let required = |i: usize| input(i)?.ok_or_else(|| cx.err(format!("{} is missing", cx.input_label(i))));
        (required(1)?, required(2)?, input(3)?, input(4)?)
    };
    let axes: Vec<usize> = match axes {
        Some(v) => v.iter().map(|&a| norm_axis(a, rank)).collect::<std::result::Result<_, _>>(),
        None => Ok((0..starts.len()).collect()),
    }
    .map_err(|e| cx.err(e))?;
    let steps = steps.unwrap_or_else(|| vec![1; axes.len()]);
    if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
        return Err(
            cx.err(format!("starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} differ in length"))
        );
    }
    if axes.iter().enumerate().any(|(k, a)| axes[..k].contains(a)) {
        return Err(cx.err(format!("axes {axes:?} repeat")));
    }
    Ok(SliceParams { starts, ends, axes, steps })
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let x = cx.arg(c, 0)?;
    let p = params(cx, x.shape.len(), |i| Ok(c.opt(i).map(ConstTensor::as_i64)))?;
    slice(x, &p.starts, &p.ends, &p.axes, &p.steps).map_err(|e| cx.err(e))
}

/// Slice of a run-time tensor: one engine slice (step 1) or gather (other steps) per sliced axis.
fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let p = params(cx, s.len(), |i| Ok(cx.known(i)?.map(|t| t.as_i64())))?;
    let mut x = cx.value(0)?;
    for k in 0..p.axes.len() {
        let (axis, d) = (p.axes[k], s[p.axes[k]] as i64);
        if p.steps[k] != 1 {
            // Any other step (negative ones too) is a gather at the positions it visits.
            let at = slice(
                &ConstTensor::ints(&(0..d).collect::<Vec<_>>()),
                &[p.starts[k]],
                &[p.ends[k]],
                &[0],
                &[p.steps[k]],
            )
            .map_err(|e| cx.err(e))?;
            if at.data.is_empty() {
                return Err(cx.err(format!(
                    "the slice {}..{} by {} of axis {axis} is empty (the engine has no empty tensors)",
                    p.starts[k], p.ends[k], p.steps[k]
                )));
            }
            let idx = cx.typed_constant(&format!("slice{k}/indices"), at.shape.clone(), at.as_f32(), DType::I64)?;
            x = cx.emit(Op::Gather(Gather { axis }), &[x, idx])?;
            continue;
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v }.clamp(0, d);
        let (begin, end) = (norm(p.starts[k]), norm(p.ends[k]));
        if end <= begin {
            return Err(cx.err(format!(
                "the slice {}..{} of axis {axis} is empty (the engine has no empty tensors)",
                p.starts[k], p.ends[k]
            )));
        }
        if (begin, end) != (0, d) {
            let op = Op::Slice(Slice { axis, start: begin as usize, len: (end - begin) as usize });
            x = cx.emit(op, &[x])?;
        }
    }
    cx.set(x)
}

/// ONNX Slice of `x`; `axes` are valid axes of `x`.
fn slice(
    x: &ConstTensor,
    starts: &[i64],
    ends: &[i64],
    axes: &[usize],
    steps: &[i64],
) -> std::result::Result<ConstTensor, String> {
    if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
        return Err(format!("starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} differ in length"));
    }
    let mut ranges: Vec<(i64, i64, i64)> = x.shape.iter().map(|&d| (0, d as i64, 1)).collect();
    let mut seen = vec![false; x.shape.len()];
    for (k, &ax) in axes.iter().enumerate() {
        if std::mem::replace(&mut seen[ax], true) {
            return Err(format!("axes {axes:?} repeat"));
        }
        let d = x.shape[ax] as i64;
        let step = steps[k];
        if step == 0 {
            return Err("slice step 0".into());
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (lo, hi) = if step > 0 { (0, d) } else { (-1, d - 1) };
        ranges[ax] = (norm(starts[k]).clamp(lo, hi), norm(ends[k]).clamp(lo, hi), step);
    }
    let counts: Vec<usize> = ranges
        .iter()
        .map(|&(s, e, st)| {
            let (span, st) = if st > 0 { (e - s, st) } else { (s - e, -st) };
            (span.max(0) as u64).div_ceil(st.unsigned_abs()) as usize
        })
        .collect();
    let src = strides(&x.shape);
    let total = created_numel(&counts)?;
    let mut data = Vec::with_capacity(total);
    for flat in 0..total {
        let (mut rem, mut off) = (flat, 0i64);
        for d in (0..counts.len()).rev() {
            let c = (rem % counts[d]) as i64;
            rem /= counts[d];
            off += (ranges[d].0 + c * ranges[d].2) * src[d] as i64;
        }
        let v = usize::try_from(off).ok().and_then(|o| x.data.get(o)).ok_or("a constant's data is short")?;
        data.push(*v);
    }
    Ok(ConstTensor { shape: counts, data, is_float: x.is_float })
}

#[cfg(test)]
mod tests {
    use super::slice;
    use crate::tensor::ConstTensor;

    #[test]
    fn slices_clamp_and_step_backwards() {
        let x = ConstTensor::ints(&[0, 1, 2, 3, 4]);
        assert_eq!(slice(&x, &[1], &[i64::MAX], &[0], &[1]).unwrap().as_i64(), vec![1, 2, 3, 4]);
        assert_eq!(slice(&x, &[-1], &[i64::MIN], &[0], &[-2]).unwrap().as_i64(), vec![4, 2, 0]);
        assert_eq!(slice(&x, &[0], &[1], &[0], &[1]).unwrap().as_i64(), vec![0]);
        assert!(slice(&x, &[0, 1], &[1], &[0], &[1]).is_err(), "lengths must agree");
        assert!(slice(&x, &[0], &[1], &[0], &[0]).is_err(), "step 0");
    }
}
