//! Broadcast: numpy broadcasting of x to a shape (the adjoint of a sum over broadcast dims).

use crate::cpu::kernels::for_each_index;
use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::shape::{broadcast_shapes, broadcast_strides, contiguous_strides};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

/// Numpy broadcast of x to `shape`. Input: x.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broadcast {
    /// The target shape.
    pub shape: Vec<usize>,
}

impl OpDef for Broadcast {
    fn name(&self) -> &'static str {
        "Broadcast"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        match broadcast_shapes(inputs[0], &self.shape) {
            Some(s) if s == self.shape => Ok(self.shape.clone()),
            _ => Err(format!("{:?} does not broadcast to {:?}", inputs[0], self.shape)),
        }
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let x = args.x(0);
        let src = broadcast_strides(args.s(0), args.out_shape);
        let dst = contiguous_strides(args.out_shape);
        for_each_index(args.out_shape, [&src, &dst], |[s, d]| out[d] = x[s]);
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (s, dy) = (cx.input_shape(0), cx.dy);
        Ok(vec![Some(cx.unbroadcast(dy, &s)?)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let out = cx.out_shape();
        let src = broadcast_strides(cx.in_shape(0), out);
        Ok(vec![cx.copy(out, (cx.in_loc(0), src), (cx.out_loc(), contiguous_strides(out)))?])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let n = rng.size(1, 17);
        vec![
            OpCase::uniform(Broadcast { shape: vec![4, 3, 5] }, &[vec![3, 1]], -1.0, 1.0),
            OpCase::uniform(Broadcast { shape: vec![n, 7] }, &[vec![1]], -1.0, 1.0).with_params(&[true]),
            OpCase::uniform(Broadcast { shape: vec![2, 3, 4] }, &[vec![3, 1]], -1.0, 1.0).with_gradient(),
        ]
    }
}
