//! ScatterND: `data` with slices at index tuples (the last axis of `indices`) replaced by (or
//! combined with) updates; the gradient of GatherND is its `Add` form on zeros.

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::index::{INDEX_WGSL, Reduction, case_distinct_indices, case_indices, wrap_index};
use crate::ops::{CaseInput, CaseRng, CpuArgs, GatherNd, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::shape::{contiguous_strides, numel};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx, REDUCE_CHUNK};
use crate::wgpu_exec::uniforms::{MAX_RANK, rank_array};

const SCATTER_ND: &str = include_str!("../../../shaders/scatter_nd.wgsl");

/// `out = data`, then for each index tuple `t` in order the slice `data[I[t], ..]` combined with
/// `updates[t, ..]` by `reduction`. Inputs: data `D`, indices `I` (tuples of `m = I[q-1]`
/// coordinates), updates of shape `I[..q-1] + D[m..]` (out-of-range tuples write nowhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScatterNd {
    /// How an update combines with the value there.
    pub reduction: Reduction,
}

crate::uniforms! {
    /// shaders/scatter_nd.wgsl: tuples `[start, start + count)`; `first` reads data, else the output.
    pub struct ScatterNdParams {
        n: u32, data: u32, idx: u32, upd: u32, out: u32, m: u32, inner: u32, start: u32, count: u32, first: u32,
        reduction: u32, dims: [u32; 8], pstrides: [u32; 8],
    }
}

/// The flat slice number of one index tuple, or `None` when a coordinate is out of range.
fn slice_of<T: Real>(tuple: &[T], dims: &[usize], pstrides: &[usize]) -> Option<usize> {
    let mut p = 0;
    for ((&c, &d), &s) in tuple.iter().zip(dims).zip(pstrides) {
        p += wrap_index(c, d)? * s;
    }
    Some(p)
}

impl OpDef for ScatterNd {
    fn name(&self) -> &'static str {
        "ScatterND"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 3, 3)?;
        let (d, i, u) = (inputs[0], inputs[1], inputs[2]);
        let q = i.len();
        let m = i.last().copied().unwrap_or(0);
        if q == 0 || m == 0 || m > d.len() || m > MAX_RANK {
            return Err(format!("indices {i:?} do not index data {d:?}"));
        }
        let mut want = i[..q - 1].to_vec();
        want.extend_from_slice(&d[m..]);
        if u != want.as_slice() {
            return Err(format!("updates are {u:?}, expected {want:?}"));
        }
        Ok(d.to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, idx, upd, d) = (args.x(0), args.x(1), args.x(2), args.s(0));
        let m = args.s(1)[args.s(1).len() - 1];
        let inner = numel(&d[m..]);
        let pstrides: Vec<usize> = contiguous_strides(&d[..m]);
        out.copy_from_slice(x);
        for t in 0..idx.len() / m {
            let Some(p) = slice_of(&idx[t * m..(t + 1) * m], &d[..m], &pstrides) else { continue };
            for s in 0..inner {
                let o = p * inner + s;
                out[o] = self.reduction.apply(out[o], upd[t * inner + s]);
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (idx, dy) = (cx.inputs[1], cx.dy);
        let mut out = vec![None, None, None];
        match self.reduction {
            Reduction::Add => out[0] = cx.need(0).then_some(dy),
            Reduction::None => {
                if cx.need(0) {
                    let zeros = cx.zeros(cx.input_shape(2))?;
                    out[0] = Some(cx.node(*self, &[dy, idx, zeros])?);
                }
            }
            _ => {
                if cx.need(0) || cx.need(2) {
                    return Err(no_gradient(cx, "ScatterND with reduction mul, max or min"));
                }
            }
        }
        if cx.need(2) {
            out[2] = Some(cx.node(GatherNd { batch_dims: 0 }, &[dy, idx])?);
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (d, i) = (cx.in_shape(0), cx.in_shape(1));
        let m = i[i.len() - 1];
        let tuples = numel(i) / m;
        let inner = numel(&d[m..]);
        let (x, idx, upd, o) = (cx.in_loc(0), cx.in_loc(1), cx.in_loc(2), cx.out_loc());
        let n = cx.out_len();
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let count = (REDUCE_CHUNK / m).min(tuples - start);
            let params = ScatterNdParams {
                n: n as u32,
                data: x.offset as u32,
                idx: idx.offset as u32,
                upd: upd.offset as u32,
                out: o.offset as u32,
                m: m as u32,
                inner: inner as u32,
                start: start as u32,
                count: count as u32,
                first: u32::from(start == 0),
                reduction: self.reduction.code(),
                dims: rank_array(&d[..m]),
                pstrides: rank_array(&contiguous_strides(&d[..m])),
            };
            out.push(Dispatch::new(
                SCATTER_ND,
                &[INDEX_WGSL],
                params,
                &[("X", x.region), ("I", idx.region), ("U", upd.region), ("O", o.region)],
                &[],
                cx.grid(n),
            ));
            start += count;
            if start >= tuples {
                break;
            }
        }
        Ok(out)
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (data, idx_shape) in [
            (vec![8], vec![4, 1]),
            (vec![4, 3], vec![2, 1]),
            (vec![4, 3], vec![3, 2]),
            (vec![2, rng.size(2, 6), 4], vec![2, 2, 2]),
            (vec![3, 3, 2], vec![1, 3]),
        ] {
            let m = idx_shape[idx_shape.len() - 1];
            let tuples = numel(&idx_shape) / m;
            let mut upd = idx_shape[..idx_shape.len() - 1].to_vec();
            upd.extend_from_slice(&data[m..]);
            for reduction in Reduction::ALL {
                let idx = if reduction == Reduction::None {
                    // Distinct slices: a permutation of all of them, its first `tuples`.
                    let slices = numel(&data[..m]);
                    let strides = contiguous_strides(&data[..m]);
                    case_distinct_indices(rng, tuples, slices)
                        .into_iter()
                        .flat_map(|p| strides.iter().zip(&data[..m]).map(move |(&s, &d)| ((p as usize / s) % d) as f32))
                        .collect()
                } else {
                    let mut v = Vec::new();
                    for _ in 0..tuples {
                        for &d in &data[..m] {
                            v.extend(case_indices(rng, 1, d));
                        }
                    }
                    v
                };
                let case = OpCase::new(
                    ScatterNd { reduction },
                    vec![
                        CaseInput::uniform(data.clone(), -1.0, 1.0),
                        CaseInput::indices(idx_shape.clone(), idx),
                        CaseInput::uniform(upd.clone(), -1.0, 1.0),
                    ],
                );
                let grad = matches!(reduction, Reduction::None | Reduction::Add);
                out.push(if grad { case.with_params(&[true, false, true]).with_gradient() } else { case });
            }
        }
        out
    }
}
