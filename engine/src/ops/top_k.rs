//! TopK: the `k` largest (or smallest) entries along an axis and their positions; two outputs.

use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::index::Reduction;
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, ScatterElements, VjpCtx, arity};
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const TOP_K: &str = include_str!("../../../shaders/top_k.wgsl");

/// The `k` largest (`largest`) or smallest entries along `axis`, sorted (ties: the lower position
/// first), and their int64 positions. Input: x. Outputs: values, indices (both `x` with `k` entries
/// along the axis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopK {
    /// The axis.
    pub axis: usize,
    /// How many entries.
    pub k: usize,
    /// The largest (else the smallest).
    pub largest: bool,
}

crate::uniforms! {
    /// shaders/top_k.wgsl.
    pub struct TopKParams { n: u32, x: u32, vals: u32, idx: u32, len: u32, inner: u32, k: u32, largest: u32 }
}

impl TopK {
    /// The order of entries `a` (value `x`) and `b` (value `y`): by value (NaN above every number),
    /// descending for the largest, then by position.
    fn order<T: Real>(&self, (a, x): (usize, T), (b, y): (usize, T)) -> std::cmp::Ordering {
        let by_value = x.partial_cmp(&y).unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()));
        let by_value = if self.largest { by_value.reverse() } else { by_value };
        by_value.then(a.cmp(&b))
    }
}

impl OpDef for TopK {
    fn name(&self) -> &'static str {
        "TopK"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        let x = inputs[0];
        if self.axis >= x.len() || self.k > x[self.axis] {
            return Err(format!("k = {} entries along axis {} of shape {x:?} do not exist", self.k, self.axis));
        }
        let mut out = x.to_vec();
        out[self.axis] = self.k;
        Ok(out)
    }

    fn extra_outputs(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<(Vec<usize>, DType)>, String> {
        Ok(vec![(self.output_shape(inputs)?, DType::I64)])
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let mut idx = vec![T::zero(); out.len()];
        self.eval_outputs(args, &mut [out, &mut idx]);
    }

    fn eval_outputs<T: Real>(&self, args: &CpuArgs<'_, T>, outs: &mut [&mut [T]]) {
        let (x, s) = (args.x(0), args.s(0));
        let len = s[self.axis];
        let inner = numel(&s[self.axis + 1..]);
        let outer = numel(&s[..self.axis]);
        let mut order: Vec<usize> = Vec::with_capacity(len);
        for o in 0..outer {
            for r in 0..inner {
                let at = |k: usize| x[(o * len + k) * inner + r];
                order.clear();
                order.extend(0..len);
                order.sort_by(|&a, &b| self.order((a, at(a)), (b, at(b))));
                for (t, &a) in order[..self.k].iter().enumerate() {
                    let dst = (o * self.k + t) * inner + r;
                    outs[0][dst] = at(a);
                    if let Some(ix) = outs.get_mut(1) {
                        ix[dst] = T::count(a);
                    }
                }
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        // dx: dy scattered back to the positions the values came from.
        let zeros = cx.zeros(cx.input_shape(0))?;
        let (idx, dy) = (cx.outputs[1], cx.dy);
        let op = ScatterElements { axis: self.axis, reduction: Reduction::Add };
        Ok(vec![Some(cx.node(op, &[zeros, idx, dy])?)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let s = cx.in_shape(0);
        let (x, v, i) = (cx.in_loc(0), cx.out_loc(), cx.out_loc_of(1));
        let n = numel(s);
        let params = TopKParams {
            n: n as u32,
            x: x.offset as u32,
            vals: v.offset as u32,
            idx: i.offset as u32,
            len: s[self.axis] as u32,
            inner: numel(&s[self.axis + 1..]) as u32,
            k: self.k as u32,
            largest: u32::from(self.largest),
        };
        Ok(vec![Dispatch::new(
            TOP_K,
            &[],
            params,
            &[("X", x.region), ("V", v.region), ("IX", i.region)],
            &[],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        let ties: Vec<f32> = (0..24).map(|i| ((i * 7) % 5) as f32).collect();
        for largest in [true, false] {
            for (shape, axis, k) in [(vec![2, 3, 4], 2, 3), (vec![2, 3, 4], 1, 3), (vec![2, 3, 4], 0, 1)] {
                out.push(OpCase::new(TopK { axis, k, largest }, vec![CaseInput::values(shape, ties.clone())]));
            }
            let len = rng.size(1, 40);
            let op = TopK { axis: 1, k: rng.size(1, len), largest };
            out.push(OpCase::uniform(op, &[vec![3, len]], -1.0, 1.0));
            out.push(
                OpCase::uniform(TopK { axis: 1, k: 2, largest }, &[vec![2, 5, 3]], -1.0, 1.0)
                    .with_params(&[true])
                    .with_gradient(),
            );
        }
        out
    }
}
