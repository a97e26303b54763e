//! Slice: a contiguous range of entries along one axis (the adjoint of Concat; its own gradient pads
//! dy with zeros).

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseRng, Concat, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::plan::Location;
use crate::shape::contiguous_strides;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

/// `len` entries of x along `axis` from `start`. Input: x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    /// The axis.
    pub axis: usize,
    /// First index.
    pub start: usize,
    /// Entries kept.
    pub len: usize,
}

impl OpDef for Slice {
    fn name(&self) -> &'static str {
        "Slice"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        let x = inputs[0];
        let Slice { axis, start, len } = *self;
        if axis >= x.len() || start + len > x[axis] {
            return Err(format!("slice {start}..{} of axis {axis} out of range for {x:?}", start + len));
        }
        let mut out = x.to_vec();
        out[axis] = len;
        Ok(out)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, shape) = (args.x(0), args.s(0));
        let Slice { axis, start, len } = *self;
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        for o in 0..outer {
            let src = (o * shape[axis] + start) * inner;
            out[o * len * inner..(o + 1) * len * inner].copy_from_slice(&x[src..src + len * inner]);
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        // dx is dy padded with zeros along the axis: Concat(zeros, dy, zeros).
        let s = cx.input_shape(0);
        let Slice { axis, start, len } = *self;
        let mut parts = Vec::new();
        for (at, n) in [(0, start), (start + len, s[axis] - start - len)] {
            if n > 0 {
                let mut shape = s.clone();
                shape[axis] = n;
                let zeros = cx.zeros(shape)?;
                parts.push((at, zeros));
            }
        }
        parts.push((start, cx.dy));
        parts.sort_by_key(|&(at, _)| at);
        let ins: Vec<ValueId> = parts.into_iter().map(|(_, v)| v).collect();
        Ok(vec![Some(if ins.len() == 1 { ins[0] } else { cx.node(Concat { axis }, &ins)? })])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let x = cx.in_loc(0);
        let src_strides = contiguous_strides(cx.in_shape(0));
        let from = Location { region: x.region, offset: x.offset + self.start * src_strides[self.axis] };
        let out = cx.out_shape();
        Ok(vec![cx.copy(out, (from, src_strides), (cx.out_loc(), contiguous_strides(out)))?])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let n = rng.size(3, 40);
        vec![
            OpCase::uniform(Slice { axis: 1, start: 2, len: 3 }, &[vec![4, 7, 2]], -1.0, 1.0),
            OpCase::uniform(Slice { axis: 0, start: 1, len: n - 2 }, &[vec![n]], -1.0, 1.0).with_params(&[true]),
            OpCase::uniform(Slice { axis: 1, start: 1, len: 2 }, &[vec![2, 5, 3]], -1.0, 1.0).with_gradient(),
            OpCase::uniform(Slice { axis: 0, start: 0, len: 2 }, &[vec![3, 2]], -1.0, 1.0).with_gradient(),
        ]
    }
}
