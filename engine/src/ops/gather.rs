//! Gather along an axis at run-time indices (an Embedding's lookup), and its gradient, a
//! deterministic scatter-add into the table.

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::index::{INDEX_WGSL, case_indices, wrap_index};
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx, REDUCE_CHUNK};

const GATHER: &str = include_str!("../../../shaders/gather.wgsl");
const GATHER_GRAD: &str = include_str!("../../../shaders/gather_grad.wgsl");

/// `out[o, j.., r] = data[o, idx[j..], r]` along `axis`: the output's shape is `data[..axis]`, then
/// `idx`'s shape, then `data[axis+1..]`. Inputs: data, indices (integers; negative ones count from
/// the end; out-of-range ones read 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gather {
    /// The axis of `data` indexed.
    pub axis: usize,
}

/// The gradient of [`Gather`] with respect to its data: `out[o, k, r] = sum over j with idx[j] == k
/// of dy[o, j, r]`. Inputs: indices, dy; the output has `dim` entries along `axis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherGrad {
    /// The axis of the gathered data.
    pub axis: usize,
    /// The data's length along it.
    pub dim: usize,
}

crate::uniforms! {
    /// shaders/gather.wgsl.
    pub struct GatherParams { n: u32, data: u32, idx: u32, out: u32, dim: u32, nidx: u32, inner: u32 }
}

crate::uniforms! {
    /// shaders/gather_grad.wgsl: the indices in `[start, start + count)`; `accumulate` adds to the output.
    pub struct GatherGradParams {
        n: u32, idx: u32, dy: u32, out: u32, dim: u32, nidx: u32, inner: u32, start: u32, count: u32, accumulate: u32,
    }
}

impl OpDef for Gather {
    fn name(&self) -> &'static str {
        "Gather"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        let (x, idx) = (inputs[0], inputs[1]);
        if self.axis >= x.len() {
            return Err(format!("axis {} out of range for shape {x:?}", self.axis));
        }
        let mut out = x[..self.axis].to_vec();
        out.extend_from_slice(idx);
        out.extend_from_slice(&x[self.axis + 1..]);
        Ok(out)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, idx, s) = (args.x(0), args.x(1), args.s(0));
        let dim = s[self.axis];
        let outer = numel(&s[..self.axis]);
        let inner = numel(&s[self.axis + 1..]);
        for o in 0..outer {
            for (j, &i) in idx.iter().enumerate() {
                let dst = &mut out[(o * idx.len() + j) * inner..][..inner];
                match wrap_index(i, dim) {
                    Some(k) => dst.copy_from_slice(&x[(o * dim + k) * inner..][..inner]),
                    None => dst.fill(T::zero()),
                }
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let mut out = vec![None, None];
        if cx.need(0) {
            let dim = cx.input_shape(0)[self.axis];
            let (idx, dy) = (cx.inputs[1], cx.dy);
            out[0] = Some(cx.node(GatherGrad { axis: self.axis, dim }, &[idx, dy])?);
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let s = cx.in_shape(0);
        let (x, idx, o) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let n = cx.out_len();
        let params = GatherParams {
            n: n as u32,
            data: x.offset as u32,
            idx: idx.offset as u32,
            out: o.offset as u32,
            dim: s[self.axis] as u32,
            nidx: numel(cx.in_shape(1)) as u32,
            inner: numel(&s[self.axis + 1..]) as u32,
        };
        Ok(vec![Dispatch::new(
            GATHER,
            &[INDEX_WGSL],
            params,
            &[("X", x.region), ("I", idx.region), ("O", o.region)],
            &[],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (data, idx_shape, axis) in [
            (vec![10, 4], vec![3, 5], 0),
            (vec![1, 3], vec![2], 0),
            (vec![2, 7, 3], vec![4], 1),
            (vec![3, 5], vec![], 1),
            (vec![rng.size(2, 40), 33], vec![rng.size(1, 20), 2], 0),
            (vec![2, 3, 9], vec![2, 2], 2),
        ] {
            let dim = data[axis];
            let idx = case_indices(rng, numel(&idx_shape), dim);
            let case = |g| {
                OpCase::new(
                    Gather { axis },
                    vec![
                        CaseInput::uniform(data.clone(), -1.0, 1.0).as_param(),
                        CaseInput::indices(idx_shape.clone(), idx.clone()),
                    ],
                )
                .with_params(&[g, false])
            };
            out.push(case(false));
            out.push(case(true).with_gradient());
        }
        // Out-of-range indices read 0.
        out.push(OpCase::new(
            Gather { axis: 0 },
            vec![CaseInput::uniform(vec![3, 2], -1.0, 1.0), CaseInput::indices(vec![4], vec![0.0, 3.0, -4.0, 2.0])],
        ));
        out
    }
}

impl OpDef for GatherGrad {
    fn name(&self) -> &'static str {
        "GatherGrad"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        let (idx, dy) = (inputs[0], inputs[1]);
        if dy.len() < self.axis + idx.len() || dy[self.axis..self.axis + idx.len()] != *idx {
            return Err(format!("dy {dy:?} does not hold indices {idx:?} at axis {}", self.axis));
        }
        let mut out = dy[..self.axis].to_vec();
        out.push(self.dim);
        out.extend_from_slice(&dy[self.axis + idx.len()..]);
        Ok(out)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (idx, dy) = (args.x(0), args.x(1));
        let s = args.out_shape;
        let outer = numel(&s[..self.axis]);
        let inner = numel(&s[self.axis + 1..]);
        out.fill(T::zero());
        for o in 0..outer {
            for (j, &i) in idx.iter().enumerate() {
                if let Some(k) = wrap_index(i, self.dim) {
                    let src = &dy[(o * idx.len() + j) * inner..][..inner];
                    for (d, &g) in out[(o * self.dim + k) * inner..][..inner].iter_mut().zip(src) {
                        *d = *d + g;
                    }
                }
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "GatherGrad"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (idx, dy, o) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let nidx = numel(cx.in_shape(0));
        let n = cx.out_len();
        let inner = numel(&cx.out_shape()[self.axis + 1..]);
        let mut out = Vec::new();
        let mut start = 0;
        // Chunks keep each invocation's loop short (lavapipe stops long loops); at least one
        // dispatch writes the zeros of an empty index set.
        loop {
            let count = REDUCE_CHUNK.min(nidx - start);
            let params = GatherGradParams {
                n: n as u32,
                idx: idx.offset as u32,
                dy: dy.offset as u32,
                out: o.offset as u32,
                dim: self.dim as u32,
                nidx: nidx as u32,
                inner: inner as u32,
                start: start as u32,
                count: count as u32,
                accumulate: u32::from(start > 0),
            };
            out.push(Dispatch::new(
                GATHER_GRAD,
                &[INDEX_WGSL],
                params,
                &[("I", idx.region), ("DY", dy.region), ("O", o.region)],
                &[],
                cx.grid(n),
            ));
            start += count;
            if start >= nidx {
                break;
            }
        }
        Ok(out)
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (dim, idx_shape, rest, axis) in [
            (10, vec![3, 5], vec![4], 0),
            (1, vec![6], vec![3], 0),
            (7, vec![4], vec![2, 3], 1),
            (5, vec![], vec![2], 1),
        ] {
            let idx = case_indices(rng, numel(&idx_shape), dim);
            let mut dy = rest[..axis].to_vec();
            dy.extend_from_slice(&idx_shape);
            dy.extend_from_slice(&rest[axis..]);
            out.push(OpCase::new(
                GatherGrad { axis, dim },
                vec![CaseInput::indices(idx_shape, idx), CaseInput::uniform(dy, -1.0, 1.0)],
            ));
        }
        // More indices than one chunk: the chunks accumulate.
        let n = REDUCE_CHUNK + 37;
        let idx = case_indices(rng, n, 3);
        out.push(OpCase::new(
            GatherGrad { axis: 0, dim: 3 },
            vec![CaseInput::indices(vec![n], idx), CaseInput::uniform(vec![n, 2], -1.0, 1.0)],
        ));
        out
    }
}
