//! Transpose: output dim `i` is input dim `perm[i]`.

use crate::cpu::kernels::strided_copy;
use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::shape::contiguous_strides;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

/// Permutes the dims: output dim i is input dim `perm[i]`. Input: x.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transpose {
    /// The permutation.
    pub perm: Vec<usize>,
}

impl Transpose {
    /// The input strides read in output order.
    fn permuted_strides(&self, shape: &[usize]) -> Vec<usize> {
        let src = contiguous_strides(shape);
        self.perm.iter().map(|&p| src[p]).collect()
    }
}

impl OpDef for Transpose {
    fn name(&self) -> &'static str {
        "Transpose"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        let x = inputs[0];
        let mut seen = vec![false; x.len()];
        if self.perm.len() != x.len()
            || self.perm.iter().any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true))
        {
            return Err(format!("perm {:?} is not a permutation of {} dims", self.perm, x.len()));
        }
        Ok(self.perm.iter().map(|&p| x[p]).collect())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let permuted = self.permuted_strides(args.s(0));
        strided_copy(args.x(0), args.out_shape, &permuted, out, &contiguous_strides(args.out_shape));
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let mut inv = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inv[p] = i;
        }
        let dy = cx.dy;
        Ok(vec![Some(cx.node(Transpose { perm: inv }, &[dy])?)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let permuted = self.permuted_strides(cx.in_shape(0));
        let out = cx.out_shape();
        Ok(vec![cx.copy(out, (cx.in_loc(0), permuted), (cx.out_loc(), contiguous_strides(out)))?])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out: Vec<OpCase> = [
            (vec![5, 7], vec![1, 0]),
            (vec![2, 3, 4, 5], vec![0, 2, 3, 1]),
            (vec![1, 9, 1], vec![2, 0, 1]),
            (vec![2, 3, 2, 3, 2], vec![4, 3, 2, 1, 0]),
            (vec![rng.size(1, 20), rng.size(1, 20), 3], vec![1, 2, 0]),
        ]
        .into_iter()
        .map(|(shape, perm)| OpCase::uniform(Transpose { perm }, &[shape], -1.0, 1.0))
        .collect();
        out.push(OpCase::uniform(Transpose { perm: vec![2, 0, 1] }, &[vec![2, 3, 4]], -1.0, 1.0).with_gradient());
        out
    }
}
