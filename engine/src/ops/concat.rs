//! Concat: the inputs joined along one axis.

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, Slice, VjpCtx};
use crate::plan::Location;
use crate::shape::contiguous_strides;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

/// Joins the inputs along an axis. Inputs: one or more tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat {
    /// The axis joined along.
    pub axis: usize,
}

impl OpDef for Concat {
    fn name(&self) -> &'static str {
        "Concat"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        let axis = self.axis;
        let first = inputs.first().ok_or("expects at least one input")?;
        if axis >= first.len() {
            return Err(format!("axis {axis} out of range for shape {first:?}"));
        }
        let mut out = first.to_vec();
        out[axis] = 0;
        for s in inputs {
            if s.len() != first.len() || (0..s.len()).any(|i| i != axis && s[i] != first[i]) {
                return Err(format!("shapes {first:?} and {s:?} differ off axis {axis}"));
            }
            out[axis] += s[axis];
        }
        Ok(out)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let axis = self.axis;
        let out_shape = args.out_shape;
        let outer: usize = out_shape[..axis].iter().product();
        let inner: usize = out_shape[axis + 1..].iter().product();
        let row = out_shape[axis] * inner;
        let mut at = 0;
        for (x, s) in args.inputs.iter().zip(args.shapes) {
            let chunk = s[axis] * inner;
            for o in 0..outer {
                out[o * row + at..o * row + at + chunk].copy_from_slice(&x[o * chunk..(o + 1) * chunk]);
            }
            at += chunk;
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let mut out = Vec::new();
        let mut at = 0;
        for i in 0..cx.inputs.len() {
            let len = cx.input_shape(i)[self.axis];
            let dy = cx.dy;
            out.push(if cx.need(i) { Some(cx.node(Slice { axis: self.axis, start: at, len }, &[dy])?) } else { None });
            at += len;
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let ol = cx.out_loc();
        let so = contiguous_strides(cx.out_shape());
        let mut at = 0;
        let mut out = Vec::new();
        for i in 0..cx.node().inputs.len() {
            let s = cx.in_shape(i);
            let dst = Location { region: ol.region, offset: ol.offset + at * so[self.axis] };
            out.push(cx.copy(s, (cx.in_loc(i), contiguous_strides(s)), (dst, so.clone()))?);
            at += s[self.axis];
        }
        Ok(out)
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out: Vec<OpCase> = [
            (vec![vec![2, 3], vec![2, 5]], 1),
            (vec![vec![1, 4], vec![3, 4], vec![2, 4]], 0),
            (vec![vec![2, 3, 4], vec![2, 1, 4]], 1),
            (vec![vec![3, rng.size(1, 30)]], 1),
        ]
        .into_iter()
        .map(|(shapes, axis)| OpCase::uniform(Concat { axis }, &shapes, -1.0, 1.0).with_params(&[false, true, false]))
        .collect();
        out.push(OpCase::uniform(Concat { axis: 1 }, &[vec![2, 3], vec![2, 2], vec![2, 1]], -1.0, 1.0).with_gradient());
        out
    }
}
