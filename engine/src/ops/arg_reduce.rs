//! ArgMax and ArgMin: the position of the largest (smallest) entry along an axis.

use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const ARG_REDUCE: &str = include_str!("../../../shaders/arg_reduce.wgsl");

/// The int64 position along `axis` of the largest (`max`) or smallest entry; of ties the first, or
/// the last with `select_last`. Input: x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgReduce {
    /// The axis reduced.
    pub axis: usize,
    /// Keep the axis with length 1.
    pub keepdims: bool,
    /// Of ties, the last position.
    pub select_last: bool,
    /// ArgMax (else ArgMin).
    pub max: bool,
}

crate::uniforms! {
    /// shaders/arg_reduce.wgsl.
    pub struct ArgReduceParams { n: u32, x: u32, out: u32, len: u32, inner: u32, select_last: u32, is_max: u32 }
}

impl OpDef for ArgReduce {
    fn name(&self) -> &'static str {
        if self.max { "ArgMax" } else { "ArgMin" }
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        let x = inputs[0];
        if self.axis >= x.len() || x[self.axis] == 0 {
            return Err(format!("axis {} of shape {x:?} is out of range or empty", self.axis));
        }
        let mut out = x.to_vec();
        if self.keepdims {
            out[self.axis] = 1;
        } else {
            out.remove(self.axis);
        }
        Ok(out)
    }

    fn output_dtype(&self, _inputs: &[DType]) -> DType {
        DType::I64
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, s) = (args.x(0), args.s(0));
        let len = s[self.axis];
        let inner = numel(&s[self.axis + 1..]);
        for (i, o) in out.iter_mut().enumerate() {
            let (r, outer) = (i % inner, i / inner);
            let at = |k: usize| x[(outer * len + k) * inner + r];
            let mut best = 0;
            for k in 1..len {
                let (v, b) = (at(k), at(best));
                let better = if self.max { v > b } else { v < b };
                if better || (self.select_last && v == b) {
                    best = k;
                }
            }
            *o = T::count(best);
        }
    }

    fn vjp(&self, _cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Ok(vec![None])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let s = cx.in_shape(0);
        let (x, o) = (cx.in_loc(0), cx.out_loc());
        let n = cx.out_len();
        let params = ArgReduceParams {
            n: n as u32,
            x: x.offset as u32,
            out: o.offset as u32,
            len: s[self.axis] as u32,
            inner: numel(&s[self.axis + 1..]) as u32,
            select_last: u32::from(self.select_last),
            is_max: u32::from(self.max),
        };
        Ok(vec![Dispatch::new(ARG_REDUCE, &[], params, &[("X", x.region), ("O", o.region)], &[], cx.grid(n))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        let ties: Vec<f32> = (0..24).map(|i| ((i * 5) % 4) as f32).collect();
        for max in [true, false] {
            for select_last in [false, true] {
                for (axis, keepdims) in [(0, true), (1, false), (2, true)] {
                    let op = ArgReduce { axis, keepdims, select_last, max };
                    out.push(OpCase::new(op, vec![CaseInput::values(vec![2, 3, 4], ties.clone())]));
                    out.push(OpCase::uniform(op, &[vec![3, rng.size(1, 30), 5]], -1.0, 1.0));
                }
            }
        }
        out
    }
}
