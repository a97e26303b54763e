//! The (batched) matrix product `alpha * op(A) @ op(B)` over the last two dims, leading (batch)
//! dims broadcast.

use crate::cpu::gemm::GemmShape;
use crate::cpu::real::Real;
use crate::error::{EngineError, Result};
use crate::graph::ValueId;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, Reshape, VjpCtx, arity};
use crate::shape::{broadcast_shapes, numel};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx, MatMulCall, matmul_dispatches};

/// `alpha * op(A) @ op(B)`. Inputs: A, B.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatMul {
    /// Use A transposed (its last two dims swapped).
    pub trans_a: bool,
    /// Use B transposed.
    pub trans_b: bool,
    /// Scale of the product.
    pub alpha: f32,
}

impl MatMul {
    /// A plain product (no transposes, alpha 1).
    pub fn plain() -> Self {
        MatMul { trans_a: false, trans_b: false, alpha: 1.0 }
    }
}

/// The sizes of a (batched) matrix product, with the strides each operand is read with.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulDims {
    /// Output batch dims (the broadcast of both operands' leading dims).
    pub batch: Vec<usize>,
    /// Rows of the product.
    pub m: usize,
    /// Columns of the product.
    pub n: usize,
    /// The contracted size.
    pub k: usize,
    /// Per flattened batch index, the element step of A (0 when A is broadcast).
    pub a_batch_stride: usize,
    /// Per flattened batch index, the element step of B (0 when B is broadcast).
    pub b_batch_stride: usize,
    /// Row and column strides of op(A) (so a transposed A costs nothing).
    pub a_rs: usize,
    /// See `a_rs`.
    pub a_cs: usize,
    /// Row and column strides of op(B).
    pub b_rs: usize,
    /// See `b_rs`.
    pub b_cs: usize,
}

impl MatMulDims {
    /// Derives the product's sizes. Batch dims must be either equal, or absent/all-ones on one side.
    pub fn new(a: &[usize], b: &[usize], trans_a: bool, trans_b: bool) -> std::result::Result<Self, String> {
        if a.len() < 2 || b.len() < 2 {
            return Err(format!("operands {a:?} and {b:?} need rank 2 or more"));
        }
        let (ar, ac) = (a[a.len() - 2], a[a.len() - 1]);
        let (br, bc) = (b[b.len() - 2], b[b.len() - 1]);
        let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if trans_b { (bc, br) } else { (br, bc) };
        if k != k2 {
            return Err(format!("inner sizes differ: {a:?} x {b:?} (trans {trans_a}, {trans_b})"));
        }
        let ab = &a[..a.len() - 2];
        let bb = &b[..b.len() - 2];
        let batch = broadcast_shapes(ab, bb).ok_or_else(|| format!("batch dims {ab:?} and {bb:?} do not broadcast"))?;
        let nb = numel(&batch);
        let stride_of = |own: &[usize], mat: usize| -> std::result::Result<usize, String> {
            if numel(own) == nb {
                Ok(mat)
            } else if numel(own) == 1 {
                Ok(0)
            } else {
                Err(format!("partially broadcast batch dims {ab:?} x {bb:?} are not supported"))
            }
        };
        let a_batch_stride = stride_of(ab, ar * ac)?;
        let b_batch_stride = stride_of(bb, br * bc)?;
        let (a_rs, a_cs) = if trans_a { (1, ac) } else { (ac, 1) };
        let (b_rs, b_cs) = if trans_b { (1, bc) } else { (bc, 1) };
        Ok(MatMulDims { batch, m, n, k, a_batch_stride, b_batch_stride, a_rs, a_cs, b_rs, b_cs })
    }

    /// Number of matrices in the batch.
    pub fn batch_count(&self) -> usize {
        numel(&self.batch)
    }
}

/// The operand shapes of an `m x k` by `k x n` product with leading batch dims `batch_a`/`batch_b`,
/// each operand stored transposed when its flag is set.
pub fn operand_shapes(
    (batch_a, batch_b): (&[usize], &[usize]),
    (m, k, n): (usize, usize, usize),
    (trans_a, trans_b): (bool, bool),
) -> (Vec<usize>, Vec<usize>) {
    let mut sa = batch_a.to_vec();
    sa.extend(if trans_a { [k, m] } else { [m, k] });
    let mut sb = batch_b.to_vec();
    sb.extend(if trans_b { [n, k] } else { [k, n] });
    (sa, sb)
}

impl OpDef for MatMul {
    fn name(&self) -> &'static str {
        "MatMul"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        let info = MatMulDims::new(inputs[0], inputs[1], self.trans_a, self.trans_b)?;
        let mut out = info.batch.clone();
        out.extend([info.m, info.n]);
        Ok(out)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        // Shapes were validated when the node was built.
        let Ok(d) = MatMulDims::new(args.s(0), args.s(1), self.trans_a, self.trans_b) else { return };
        let (a, b) = (args.x(0), args.x(1));
        let g = GemmShape { m: d.m, k: d.k, n: d.n, a: (d.a_rs, d.a_cs), b: (d.b_rs, d.b_cs), c: (d.n, 1) };
        for i in 0..d.batch_count() {
            let c = &mut out[i * d.m * d.n..(i + 1) * d.m * d.n];
            T::gemm(g, T::of(self.alpha), &a[i * d.a_batch_stride..], &b[i * d.b_batch_stride..], T::zero(), c);
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let MatMul { trans_a: ta, trans_b: tb, alpha } = *self;
        let (a, bb, dy) = (cx.inputs[0], cx.inputs[1], cx.dy);
        let (sa, sb) = (cx.shape(a), cx.shape(bb));
        let d = MatMulDims::new(&sa, &sb, ta, tb).map_err(EngineError::Unsupported)?;
        let batched = d.batch_count() > 1 || sa.len() > 2 || sb.len() > 2;
        let mm = |trans_a, trans_b| MatMul { trans_a, trans_b, alpha };
        // With batch dims, only the common forms are differentiated: both operands batched alike,
        // or B shared (a dense layer over a sequence), where dB sums over the batch.
        let (mut da, mut db) = (None, None);
        if cx.need(0) {
            let g = if ta { cx.node(mm(tb, true), &[bb, dy])? } else { cx.node(mm(false, !tb), &[dy, bb])? };
            da = Some(cx.unbroadcast(g, &sa)?);
        }
        if cx.need(1) {
            if batched && d.b_batch_stride == 0 && !ta {
                // Flatten the batch into rows: dB = A_flat^T dY_flat (or its transpose).
                let rows = d.batch_count() * d.m;
                let af = cx.node(Reshape { shape: vec![rows, d.k] }, &[a])?;
                let gf = cx.node(Reshape { shape: vec![rows, d.n] }, &[dy])?;
                let g = if tb { cx.node(mm(true, false), &[gf, af])? } else { cx.node(mm(true, false), &[af, gf])? };
                db = Some(cx.node(Reshape { shape: sb.clone() }, &[g])?);
            } else if batched && d.b_batch_stride == 0 {
                return Err(EngineError::Unsupported(format!(
                    "node `{}`: the gradient of a batched MatMul with transposed A and a shared B",
                    cx.name
                )));
            } else {
                let g = if tb { cx.node(mm(true, ta), &[dy, a])? } else { cx.node(mm(!ta, false), &[a, dy])? };
                db = Some(cx.unbroadcast(g, &sb)?);
            }
        }
        Ok(vec![da, db])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let d = MatMulDims::new(cx.in_shape(0), cx.in_shape(1), self.trans_a, self.trans_b)
            .map_err(|e| EngineError::Unsupported(format!("node `{}`: {e}", cx.node().name)))?;
        let mn = d.m * d.n;
        Ok(matmul_dispatches(
            cx.target,
            MatMulCall {
                m: d.m,
                n: d.n,
                k: d.k,
                batch_hi: d.batch_count(),
                batch_lo: 1,
                a: (cx.in_loc(0), [d.a_batch_stride, 0], d.a_rs, d.a_cs),
                b: (cx.in_loc(1), [d.b_batch_stride, 0], d.b_rs, d.b_cs),
                c: (cx.out_loc(), [mn, 0], d.n),
                alpha: self.alpha,
                beta: 0.0,
            },
        ))
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        // (batch A, batch B, m, k, n): sizes of 1, odd sizes, sizes around the tiles, random sizes.
        type Dims = (Vec<usize>, Vec<usize>, usize, usize, usize);
        let mut dims: Vec<Dims> = vec![
            (vec![], vec![], 1, 1, 1),
            (vec![], vec![], 65, 77, 200),
            (vec![], vec![], 7, 5, 9),
            (vec![3], vec![], 17, 33, 13),
            (vec![2, 3], vec![2, 3], 9, 16, 31),
            (vec![], vec![4], 5, 8, 3),
        ];
        for _ in 0..3 {
            dims.push((vec![], vec![], rng.size(1, 150), rng.size(1, 100), rng.size(1, 150)));
        }
        let mut out = Vec::new();
        for (ba, bb, m, k, n) in dims {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (sa, sb) = operand_shapes((&ba, &bb), (m, k, n), (ta, tb));
                let alpha = if ta { 0.5 } else { 1.0 };
                out.push(
                    OpCase::uniform(MatMul { trans_a: ta, trans_b: tb, alpha }, &[sa, sb], -1.0, 1.0)
                        .with_params(&[false, true]),
                );
            }
        }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = if ta { vec![4, 3] } else { vec![3, 4] };
            let b = if tb { vec![5, 4] } else { vec![4, 5] };
            out.push(
                OpCase::uniform(MatMul { trans_a: ta, trans_b: tb, alpha: 0.7 }, &[a, b], -1.0, 1.0).with_gradient(),
            );
        }
        out.push(OpCase::uniform(MatMul::plain(), &[vec![2, 3, 4], vec![4, 2]], -1.0, 1.0).with_gradient());
        let bt = MatMul { trans_a: false, trans_b: true, alpha: 1.0 };
        out.push(OpCase::uniform(bt, &[vec![2, 3, 4], vec![2, 5, 4]], -1.0, 1.0).with_gradient());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_shapes_and_strides() {
        let d = MatMulDims::new(&[3, 4, 5], &[5, 6], false, false).unwrap();
        assert_eq!((d.batch.clone(), d.m, d.n, d.k), (vec![3], 4, 6, 5));
        assert_eq!((d.a_batch_stride, d.b_batch_stride), (20, 0));
        let d = MatMulDims::new(&[5, 4], &[6, 5], true, true).unwrap();
        assert_eq!((d.m, d.n, d.k, d.a_rs, d.a_cs, d.b_rs, d.b_cs), (4, 6, 5, 1, 4, 1, 5));
        assert!(MatMulDims::new(&[2, 1, 4, 5], &[1, 3, 5, 6], false, false).is_err());
    }
}
