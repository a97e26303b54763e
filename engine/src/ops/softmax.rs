//! Softmax and log-softmax along one axis, and their gradient.
//!
//! Softmax: `y_i = exp(x_i - max) / sum_j exp(x_j - max)`; log-softmax: `y_i = x_i - max - log sum_j exp(x_j - max)`.
//! Gradients: softmax `dx = y (dy - sum(dy y))`; log-softmax `dx = dy - exp(y) sum(dy)`.

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const SOFTMAX: &str = include_str!("../../../shaders/softmax.wgsl");
const SOFTMAX_GRAD: &str = include_str!("../../../shaders/softmax_grad.wgsl");

/// Softmax (or log-softmax) along one axis. Input: x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softmax {
    /// The axis normalised over.
    pub axis: usize,
    /// Log-softmax instead of softmax.
    pub log: bool,
}

/// Gradient of softmax / log-softmax. Inputs: y (the forward output), dy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxGrad {
    /// The axis.
    pub axis: usize,
    /// Log-softmax.
    pub log: bool,
}

crate::uniforms! {
    /// shaders/softmax.wgsl: one invocation per (outer, inner) pair.
    pub struct SoftmaxParams { rows: u32, len: u32, inner: u32, x: u32, out: u32 }
}

crate::uniforms! {
    /// shaders/softmax_grad.wgsl.
    pub struct SoftmaxGradParams { rows: u32, len: u32, inner: u32, y: u32, dy: u32, out: u32, log: u32 }
}

/// (outer, len, inner) of `shape` around `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

impl OpDef for Softmax {
    fn name(&self) -> &'static str {
        if self.log { "LogSoftmax" } else { "Softmax" }
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        if self.axis >= inputs[0].len() {
            return Err(format!("axis {} out of range for shape {:?}", self.axis, inputs[0]));
        }
        Ok(inputs[0].to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let x = args.x(0);
        let (outer, len, inner) = split(args.s(0), self.axis);
        for o in 0..outer {
            for i in 0..inner {
                let base = o * len * inner + i;
                let at = |t: usize| base + t * inner;
                let max = (0..len).map(|t| x[at(t)]).fold(T::neg_infinity(), T::max);
                let sum: T = (0..len).map(|t| (x[at(t)] - max).exp()).sum();
                for t in 0..len {
                    out[at(t)] = if self.log { x[at(t)] - max - sum.ln() } else { (x[at(t)] - max).exp() / sum };
                }
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (y, dy) = (cx.output, cx.dy);
        Ok(vec![Some(cx.node(SoftmaxGrad { axis: self.axis, log: self.log }, &[y, dy])?)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (_, len, inner) = split(cx.in_shape(0), self.axis);
        let rows = cx.out_len() / len.max(1);
        let (x, o) = (cx.in_loc(0), cx.out_loc());
        let expr = if self.log { "x - log(sum)" } else { "exp(x) / sum" };
        let params = SoftmaxParams {
            rows: rows as u32,
            len: len as u32,
            inner: inner as u32,
            x: x.offset as u32,
            out: o.offset as u32,
        };
        Ok(vec![Dispatch::new(
            SOFTMAX,
            &[],
            params,
            &[("X", x.region), ("O", o.region)],
            &[("EXPR", expr.into())],
            cx.grid(rows),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for shape in [vec![1, 1], vec![4, 10], vec![3, 5, 7], vec![2, 1000], vec![rng.size(1, 9), rng.size(2, 99)]] {
            for axis in 0..shape.len() {
                for log in [false, true] {
                    out.push(OpCase::uniform(Softmax { axis, log }, std::slice::from_ref(&shape), -8.0, 8.0));
                }
            }
        }
        for log in [false, true] {
            out.push(OpCase::uniform(Softmax { axis: 1, log }, &[vec![3, 5]], -2.0, 2.0).with_gradient());
            out.push(OpCase::uniform(Softmax { axis: 0, log }, &[vec![3, 5, 2]], -2.0, 2.0).with_gradient());
        }
        out
    }
}

impl OpDef for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "SoftmaxGrad"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        if inputs[0] != inputs[1] {
            return Err(format!("shapes {:?} and {:?} differ", inputs[0], inputs[1]));
        }
        if self.axis >= inputs[0].len() {
            return Err(format!("axis {} out of range for shape {:?}", self.axis, inputs[0]));
        }
        Ok(inputs[0].to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, dx: &mut [T]) {
        let (y, dy) = (args.x(0), args.x(1));
        let (outer, len, inner) = split(args.s(0), self.axis);
        for o in 0..outer {
            for i in 0..inner {
                let at = |t: usize| o * len * inner + i + t * inner;
                if self.log {
                    let sum: T = (0..len).map(|t| dy[at(t)]).sum();
                    for t in 0..len {
                        dx[at(t)] = dy[at(t)] - y[at(t)].exp() * sum;
                    }
                } else {
                    let dot: T = (0..len).map(|t| dy[at(t)] * y[at(t)]).sum();
                    for t in 0..len {
                        dx[at(t)] = y[at(t)] * (dy[at(t)] - dot);
                    }
                }
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "SoftmaxGrad"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (_, len, inner) = split(cx.in_shape(0), self.axis);
        let rows = cx.out_len() / len.max(1);
        let (y, dy, o) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let params = SoftmaxGradParams {
            rows: rows as u32,
            len: len as u32,
            inner: inner as u32,
            y: y.offset as u32,
            dy: dy.offset as u32,
            out: o.offset as u32,
            log: self.log as u32,
        };
        Ok(vec![Dispatch::new(
            SOFTMAX_GRAD,
            &[],
            params,
            &[("Y", y.region), ("DY", dy.region), ("O", o.region)],
            &[],
            cx.grid(rows),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (shape, axis) in [(vec![4, 10], 1), (vec![3, 5, 7], 1), (vec![2, 9], 0), (vec![rng.size(1, 7), 13], 1)] {
            for log in [false, true] {
                out.push(OpCase::uniform(SoftmaxGrad { axis, log }, &[shape.clone(), shape.clone()], -1.0, 1.0));
            }
        }
        out
    }
}
