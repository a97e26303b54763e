//! Sum, mean, max, min or product over axes. On the GPU long reductions run in passes of at most
//! [`REDUCE_CHUNK`] elements per invocation, the partial results through scratch space.

use crate::cpu::kernels::for_each_index;
use crate::cpu::real::Real;
use crate::cpu::sum::{BlockedSum, pairwise_sum};
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{BinaryOp, Broadcast, CaseInput, CaseRng, CpuArgs, OpCase, OpDef, Reshape, VjpCtx, arity};
use crate::plan::Location;
use crate::shape::{coalesce_dims, contiguous_strides, numel};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx, REDUCE_CHUNK};
use crate::wgpu_exec::uniforms::{MAX_RANK, rank_array};

const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");

/// Reductions over axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum of the elements.
    Sum,
    /// Arithmetic mean of the elements.
    Mean,
    /// The largest element (-inf over none).
    Max,
    /// The smallest element (+inf over none).
    Min,
    /// Product of the elements.
    Prod,
}

impl ReduceOp {
    /// The value over no elements.
    fn init<T: Real>(self) -> T {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => T::zero(),
            ReduceOp::Max => T::neg_infinity(),
            ReduceOp::Min => T::infinity(),
            ReduceOp::Prod => T::one(),
        }
    }

    /// `acc` combined with one more element.
    fn combine<T: Real>(self, acc: T, v: T) -> T {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => acc + v,
            // NaN wins, as in numpy and ONNX.
            ReduceOp::Max => {
                if v.is_nan() || v > acc {
                    v
                } else {
                    acc
                }
            }
            ReduceOp::Min => {
                if v.is_nan() || v < acc {
                    v
                } else {
                    acc
                }
            }
            ReduceOp::Prod => acc * v,
        }
    }

    /// The WGSL of [`ReduceOp::init`] and [`ReduceOp::combine`] (`acc`, `v`).
    fn wgsl(self) -> (&'static str, &'static str) {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => ("0.0", "acc + v"),
            ReduceOp::Max => ("bitcast<f32>(0xff800000u)", "select(acc, v, v != v || v > acc)"),
            ReduceOp::Min => ("bitcast<f32>(0x7f800000u)", "select(acc, v, v != v || v < acc)"),
            ReduceOp::Prod => ("1.0", "acc * v"),
        }
    }
}

/// A reduction over axes. Input: x.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reduce {
    /// Sum or mean.
    pub op: ReduceOp,
    /// The axes reduced (sorted, unique).
    pub axes: Vec<usize>,
    /// Keep reduced dims as size 1.
    pub keepdims: bool,
}

crate::uniforms! {
    /// shaders/reduce.wgsl: n = outputs * chunks; the kept and reduced dims with their strides.
    pub struct ReduceParams {
        n: u32, kept_rank: u32, red_rank: u32, count: u32, x: u32, out: u32, scale: f32,
        kept_dims: [u32; 8], kept_strides: [u32; 8], red_dims: [u32; 8], red_strides: [u32; 8],
        chunks: u32, chunk_len: u32,
    }
}

impl Reduce {
    /// The kept and reduced dims of `shape` with their strides.
    fn split(&self, shape: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>, Vec<usize>) {
        let src = contiguous_strides(shape);
        let kept: Vec<usize> = (0..shape.len()).filter(|i| !self.axes.contains(i)).collect();
        (
            kept.iter().map(|&i| shape[i]).collect(),
            kept.iter().map(|&i| src[i]).collect(),
            self.axes.iter().map(|&i| shape[i]).collect(),
            self.axes.iter().map(|&i| src[i]).collect(),
        )
    }
}

impl OpDef for Reduce {
    fn name(&self) -> &'static str {
        "Reduce"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        let x = inputs[0];
        if self.axes.iter().any(|&a| a >= x.len()) {
            return Err(format!("axes {:?} out of range for shape {x:?}", self.axes));
        }
        Ok(x.iter()
            .enumerate()
            .filter_map(|(i, &d)| if self.axes.contains(&i) { self.keepdims.then_some(1) } else { Some(d) })
            .collect())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, shape) = (args.x(0), args.s(0));
        let kept_axes: Vec<usize> = (0..shape.len()).filter(|i| !self.axes.contains(i)).collect();
        if kept_axes.len() == 1 && matches!(self.op, ReduceOp::Sum | ReduceOp::Mean) {
            // The common case (bias gradients, per-channel statistics): one kept axis, summed in
            // contiguous runs.
            let a = kept_axes[0];
            let (outer, dim, inner) =
                (shape[..a].iter().product::<usize>(), shape[a], shape[a + 1..].iter().product::<usize>());
            // Pairwise sums of each run, then of the runs of a channel (pairwise_sum).
            let mut runs = vec![T::zero(); outer];
            for (ch, acc) in out.iter_mut().enumerate().take(dim) {
                for (o, run) in runs.iter_mut().enumerate() {
                    let base = (o * dim + ch) * inner;
                    *run = pairwise_sum(&x[base..base + inner]);
                }
                *acc = pairwise_sum(&runs);
            }
            if self.op == ReduceOp::Mean {
                let count = T::count((outer * inner).max(1));
                out.iter_mut().for_each(|v| *v = *v / count);
            }
            return;
        }
        let (kept_dims, kept_strides, red_dims, red_strides) = self.split(shape);
        let count = T::count(numel(&red_dims).max(1));
        let mut o = 0;
        let summing = matches!(self.op, ReduceOp::Sum | ReduceOp::Mean);
        let mut sum = BlockedSum::new();
        for_each_index(&kept_dims, [&kept_strides], |[base]| {
            let acc = if summing {
                for_each_index(&red_dims, [&red_strides], |[r]| sum.push(x[base + r]));
                sum.take_total()
            } else {
                let mut acc = self.op.init();
                for_each_index(&red_dims, [&red_strides], |[r]| acc = self.op.combine(acc, x[base + r]));
                acc
            };
            out[o] = if self.op == ReduceOp::Mean { acc / count } else { acc };
            o += 1;
        });
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let s = cx.input_shape(0);
        let kept: Vec<usize> = s.iter().enumerate().map(|(i, &d)| if self.axes.contains(&i) { 1 } else { d }).collect();
        let mut g = cx.dy;
        if !self.keepdims {
            g = cx.node(Reshape { shape: kept.clone() }, &[g])?;
        }
        if let ReduceOp::Max | ReduceOp::Min = self.op {
            // As TensorFlow's (Keras's) rule: dy shared evenly among the entries equal to the result.
            let x = cx.inputs[0];
            let y = if self.keepdims { cx.output } else { cx.node(Reshape { shape: kept.clone() }, &[cx.output])? };
            let hit = cx.node(BinaryOp::Equal, &[x, y])?;
            let count = cx.node(Reduce { op: ReduceOp::Sum, axes: self.axes.clone(), keepdims: true }, &[hit])?;
            let share = cx.node(BinaryOp::Div, &[g, count])?;
            return Ok(vec![Some(cx.node(BinaryOp::Mul, &[hit, share])?)]);
        }
        if self.op == ReduceOp::Prod {
            return Err(crate::EngineError::Unsupported(format!(
                "node `{}`: the gradient of a product reduction is not implemented (its inputs are trainable)",
                cx.name
            )));
        }
        g = cx.node(Broadcast { shape: s.clone() }, &[g])?;
        if self.op == ReduceOp::Mean {
            let count: usize = self.axes.iter().map(|&a| s[a]).product();
            let k = cx.constant(vec![], vec![1.0 / count.max(1) as f32])?;
            g = cx.node(BinaryOp::Mul, &[g, k])?;
        }
        Ok(vec![Some(g)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let n_out = cx.out_len();
        let (kept_dims, kept_strides, red_dims, red_strides) = self.split(cx.in_shape(0));
        let count: usize = red_dims.iter().product();
        let scale = if self.op == ReduceOp::Mean { 1.0 / count.max(1) as f32 } else { 1.0 };
        let mut passes = Vec::new();
        let (mut src, mut kd, mut ks, mut rd, mut rs, mut cnt) =
            (cx.in_loc(0), kept_dims, kept_strides, red_dims, red_strides, count);
        let mut scratch_at = None;
        loop {
            let chunks = cnt.div_ceil(REDUCE_CHUNK).max(1);
            let last = chunks == 1;
            let dst = if last {
                cx.out_loc()
            } else {
                let at = match scratch_at {
                    Some(at) => at,
                    None => cx.scratch()?,
                };
                scratch_at = Some(Location { region: at.region, offset: at.offset + n_out * chunks });
                at
            };
            let (kdc, ksc) = coalesce_dims(&kd, &[ks.clone()]);
            let (rdc, rsc) = coalesce_dims(&rd, &[rs.clone()]);
            if kdc.len() > MAX_RANK || rdc.len() > MAX_RANK {
                return Err(cx.too_many_dims(kdc.len().max(rdc.len())));
            }
            let params = ReduceParams {
                n: (n_out * chunks) as u32,
                kept_rank: kdc.len() as u32,
                red_rank: rdc.len() as u32,
                count: cnt as u32,
                x: src.offset as u32,
                out: dst.offset as u32,
                scale: if last { scale } else { 1.0 },
                kept_dims: rank_array(&kdc),
                kept_strides: rank_array(&ksc[0]),
                red_dims: rank_array(&rdc),
                red_strides: rank_array(&rsc[0]),
                chunks: chunks as u32,
                chunk_len: REDUCE_CHUNK as u32,
            };
            let (init, combine) = self.op.wgsl();
            passes.push(Dispatch::new(
                REDUCE,
                &[],
                params,
                &[("X", src.region), ("O", dst.region)],
                &[("INIT", init.to_string()), ("COMBINE", combine.to_string())],
                cx.grid(n_out * chunks),
            ));
            if last {
                break;
            }
            // Next pass: the partial sums, [n_out, chunks], reduced over the chunks.
            src = dst;
            kd = vec![n_out];
            ks = vec![chunks];
            rd = vec![chunks];
            rs = vec![1];
            cnt = chunks;
        }
        Ok(passes)
    }

    fn scratch_len(&self, inputs: &[&[usize]], output: &[usize]) -> usize {
        let count: usize = self.axes.iter().map(|&a| inputs[0][a]).product();
        let n_out = numel(output);
        let mut total = 0;
        let mut c = count.div_ceil(REDUCE_CHUNK);
        while c > 1 {
            total += n_out * c;
            c = c.div_ceil(REDUCE_CHUNK);
        }
        total
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        let r = rng.size(2, 30);
        for (shape, axes) in [
            (vec![7], vec![0]),
            (vec![4, 5, 6], vec![1]),
            (vec![4, 5, 6], vec![0, 2]),
            (vec![2, 3, 4, 5], vec![2, 3]),
            (vec![3, 1000], vec![1]),
            (vec![r, 3, r], vec![0, 2]),
        ] {
            for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod] {
                for keepdims in [false, true] {
                    out.push(OpCase::uniform(
                        Reduce { op, axes: axes.clone(), keepdims },
                        std::slice::from_ref(&shape),
                        -1.0,
                        1.0,
                    ));
                }
            }
        }
        // Longer than one pass: partial sums through scratch; sums of ones count every element
        // (lavapipe cuts long shader loops; the chunked passes must not).
        let big = vec![4, 2, 26, 260];
        out.push(OpCase::new(
            Reduce { op: ReduceOp::Sum, axes: vec![0, 2, 3], keepdims: false },
            vec![CaseInput::values(big.clone(), vec![1.0; numel(&big)])],
        ));
        // A long max: the passes combine partial maxima.
        out.push(OpCase::uniform(
            Reduce { op: ReduceOp::Max, axes: vec![1], keepdims: false },
            &[vec![2, 2 * REDUCE_CHUNK + 5]],
            -1.0,
            1.0,
        ));
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            for keepdims in [false, true] {
                out.push(
                    OpCase::uniform(Reduce { op, axes: vec![0, 2], keepdims }, &[vec![2, 3, 4]], -1.0, 1.0)
                        .with_gradient(),
                );
            }
        }
        // Ties share the gradient of a max.
        out.push(
            OpCase::new(
                Reduce { op: ReduceOp::Max, axes: vec![1], keepdims: false },
                vec![CaseInput::values(vec![2, 3], vec![0.5, 0.5, -1.0, 2.0, 1.0, 2.0])],
            )
            .with_gradient(),
        );
        out
    }
}
