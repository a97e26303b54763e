//! Reshape: the same elements in a new shape. The memory plan lets the output alias its input, so
//! on the GPU it costs nothing unless the input is an input or a parameter.

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::shape::{contiguous_strides, numel};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

/// Same data, new shape (element count unchanged). Input: x.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reshape {
    /// The new shape.
    pub shape: Vec<usize>,
}

impl OpDef for Reshape {
    fn name(&self) -> &'static str {
        "Reshape"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        if numel(&self.shape) != numel(inputs[0]) {
            return Err(format!("cannot reshape {:?} to {:?}", inputs[0], self.shape));
        }
        Ok(self.shape.clone())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        out.copy_from_slice(args.x(0));
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (s, dy) = (cx.input_shape(0), cx.dy);
        Ok(vec![Some(cx.node(Reshape { shape: s }, &[dy])?)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (x, o) = (cx.in_loc(0), cx.out_loc());
        if x == o {
            return Ok(Vec::new());
        }
        let st = contiguous_strides(cx.out_shape());
        Ok(vec![cx.copy(cx.out_shape(), (x, st.clone()), (o, st))?])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let n = rng.size(1, 50);
        vec![
            OpCase::uniform(Reshape { shape: vec![2, 12] }, &[vec![4, 6]], -1.0, 1.0),
            OpCase::uniform(Reshape { shape: vec![n] }, &[vec![1, n, 1]], -1.0, 1.0).with_params(&[true]),
            OpCase::uniform(Reshape { shape: vec![6, 2] }, &[vec![3, 4]], -1.0, 1.0).with_gradient(),
        ]
    }
}
