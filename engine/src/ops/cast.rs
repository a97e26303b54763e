//! Cast: a value converted to another element type. To an integer type a float truncates toward
//! zero; to a boolean any nonzero value is 1; to float32 it is the value itself (every type is
//! stored as f32: [`crate::dtype`]).

use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

/// Converts to element type `to`. Input: x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cast {
    /// The target type.
    pub to: DType,
}

impl Cast {
    fn apply<T: Real>(self, x: T) -> T {
        match self.to {
            DType::F32 => x,
            DType::I64 | DType::I32 => x.trunc(),
            DType::Bool => {
                if x != T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
        }
    }

    fn expr(self) -> &'static str {
        match self.to {
            DType::F32 => "x",
            DType::I64 | DType::I32 => "trunc(x)",
            DType::Bool => "select(0.0, 1.0, x != 0.0)",
        }
    }
}

impl OpDef for Cast {
    fn name(&self) -> &'static str {
        "Cast"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        Ok(inputs[0].to_vec())
    }

    fn output_dtype(&self, _inputs: &[DType]) -> DType {
        self.to
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        for (o, &x) in out.iter_mut().zip(args.x(0)) {
            *o = self.apply(x);
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        // Only a float-to-float cast passes a gradient (gradients flow through float paths only).
        let float_path = self.to.is_float() && cx.b.dtype(cx.inputs[0]).is_float();
        Ok(vec![float_path.then_some(cx.dy)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        Ok(vec![crate::ops::unary::unary_dispatch(cx, self.expr().to_string())])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let fixed = vec![-2.7, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 3.9, 16.0, -7.999];
        let mut out = Vec::new();
        for to in [DType::F32, DType::I64, DType::I32, DType::Bool] {
            out.push(OpCase::new(Cast { to }, vec![CaseInput::values(vec![2, 5], fixed.clone())]));
            out.push(OpCase::uniform(Cast { to }, &[vec![rng.size(1, 500)]], -50.0, 50.0));
        }
        out.push(OpCase::uniform(Cast { to: DType::F32 }, &[vec![3, 4]], -1.0, 1.0).with_gradient());
        out
    }
}
