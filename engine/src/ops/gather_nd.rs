//! GatherND: slices of `data` at index tuples (the last axis of `indices`), after `batch_dims`
//! leading dims both share.

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::index::{INDEX_WGSL, Reduction, case_indices, wrap_index};
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, ScatterNd, VjpCtx, arity};
use crate::shape::{contiguous_strides, numel};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};
use crate::wgpu_exec::uniforms::{MAX_RANK, rank_array};

const GATHER_ND: &str = include_str!("../../../shaders/gather_nd.wgsl");

/// With data `D` (rank r), indices `I` (rank q, tuples of `m = I[q-1]` coordinates) and `b` batch
/// dims: `out[t.., s..] = data[batch(t), I[t..], s..]`, of shape `I[..q-1] + D[b+m..]`. Inputs:
/// data, indices (out-of-range coordinates read 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherNd {
    /// Leading dims shared by data and indices.
    pub batch_dims: usize,
}

crate::uniforms! {
    /// shaders/gather_nd.wgsl: `dims`/`strides` are data's dims and strides at the m indexed axes.
    pub struct GatherNdParams {
        n: u32, data: u32, idx: u32, out: u32, m: u32, inner: u32, tuples_per_batch: u32, batch_stride: u32,
        dims: [u32; 8], strides: [u32; 8],
    }
}

impl GatherNd {
    /// (m, tuples per batch, inner) for data shape `d` and indices shape `i`.
    fn sizes(&self, d: &[usize], i: &[usize]) -> (usize, usize, usize) {
        let (b, q) = (self.batch_dims, i.len());
        let m = i[q - 1];
        (m, numel(&i[b..q - 1]), numel(&d[b + m..]))
    }
}

impl OpDef for GatherNd {
    fn name(&self) -> &'static str {
        "GatherND"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        let (d, i, b) = (inputs[0], inputs[1], self.batch_dims);
        let q = i.len();
        if q == 0 || b >= q || b > d.len() || d[..b] != i[..b] {
            return Err(format!("indices {i:?} do not index data {d:?} with {b} batch dims"));
        }
        let m = i[q - 1];
        if b + m > d.len() || m > MAX_RANK {
            return Err(format!("index tuples of {m} coordinates do not fit data {d:?} after {b} batch dims"));
        }
        let mut out = i[..q - 1].to_vec();
        out.extend_from_slice(&d[b + m..]);
        Ok(out)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, idx, d) = (args.x(0), args.x(1), args.s(0));
        let b = self.batch_dims;
        let (m, per_batch, inner) = self.sizes(d, args.s(1));
        let strides = contiguous_strides(d);
        let batch_stride = numel(&d[b..]);
        for t in 0..idx.len() / m.max(1) {
            let mut off = Some((t / per_batch.max(1)) * batch_stride);
            for k in 0..m {
                off = off.zip(wrap_index(idx[t * m + k], d[b + k])).map(|(o, c)| o + c * strides[b + k]);
            }
            let dst = &mut out[t * inner..][..inner];
            match off {
                Some(o) => dst.copy_from_slice(&x[o..o + inner]),
                None => dst.fill(T::zero()),
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let mut out = vec![None, None];
        if cx.need(0) {
            if self.batch_dims != 0 {
                return Err(crate::EngineError::Unsupported(format!(
                    "node `{}`: the gradient of GatherND with batch_dims > 0 is not implemented",
                    cx.name
                )));
            }
            let zeros = cx.zeros(cx.input_shape(0))?;
            let (idx, dy) = (cx.inputs[1], cx.dy);
            out[0] = Some(cx.node(ScatterNd { reduction: Reduction::Add }, &[zeros, idx, dy])?);
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (d, i) = (cx.in_shape(0), cx.in_shape(1));
        let b = self.batch_dims;
        let (m, per_batch, inner) = self.sizes(d, i);
        let strides = contiguous_strides(d);
        let (x, idx, o) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let n = cx.out_len();
        let params = GatherNdParams {
            n: n as u32,
            data: x.offset as u32,
            idx: idx.offset as u32,
            out: o.offset as u32,
            m: m as u32,
            inner: inner.max(1) as u32,
            tuples_per_batch: per_batch.max(1) as u32,
            batch_stride: numel(&d[b..]) as u32,
            dims: rank_array(&d[b..b + m]),
            strides: rank_array(&strides[b..b + m]),
        };
        Ok(vec![Dispatch::new(
            GATHER_ND,
            &[INDEX_WGSL],
            params,
            &[("X", x.region), ("I", idx.region), ("O", o.region)],
            &[],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (data, idx_shape, b) in [
            (vec![4, 3], vec![5, 2], 0),
            (vec![4, 3], vec![2, 1], 0),
            (vec![2, 3, 4], vec![3, 3], 0),
            (vec![2, 3, 4], vec![2, 2, 1], 1),
            (vec![3, rng.size(1, 7), 5], vec![3, 4, 1], 1),
            (vec![5], vec![1], 0),
        ] {
            let m = idx_shape[idx_shape.len() - 1];
            let tuples = numel(&idx_shape) / m;
            let mut idx = Vec::new();
            for _ in 0..tuples {
                for k in 0..m {
                    idx.extend(case_indices(rng, 1, data[b + k]));
                }
            }
            let inputs = vec![CaseInput::uniform(data.clone(), -1.0, 1.0), CaseInput::indices(idx_shape.clone(), idx)];
            out.push(OpCase::new(GatherNd { batch_dims: b }, inputs.clone()));
            if b == 0 {
                out.push(OpCase::new(GatherNd { batch_dims: b }, inputs).with_params(&[true, false]).with_gradient());
            }
        }
        out
    }
}
