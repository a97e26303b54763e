//! ScatterElements: `data` with each update written (or combined) at its own coordinates, the axis
//! coordinate replaced by its index (`torch.scatter`, `scatter_add`); the gradient of
//! GatherElements and of TopK is its `Add` form on zeros.

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::gather_elements::check_elementwise_indices;
use crate::ops::index::{INDEX_WGSL, Reduction, case_distinct_indices, case_indices, wrap_index};
use crate::ops::{CaseInput, CaseRng, CpuArgs, GatherElements, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::shape::{contiguous_strides, numel};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};
use crate::wgpu_exec::uniforms::rank_array;

const SCATTER_ELEMENTS: &str = include_str!("../../../shaders/scatter_elements.wgsl");

/// `out = data`, then for each update `u` in order, `out[u's coordinates with axis := idx[u]]`
/// combined with `upd[u]` by `reduction`. Inputs: data, indices, updates (the indices' shape;
/// out-of-range indices write nowhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScatterElements {
    /// The axis indexed.
    pub axis: usize,
    /// How an update combines with the value there.
    pub reduction: Reduction,
}

crate::uniforms! {
    /// shaders/scatter_elements.wgsl.
    pub struct ScatterElementsParams {
        n: u32, rank: u32, data: u32, idx: u32, upd: u32, out: u32, axis: u32, dim: u32, reduction: u32,
        data_dims: [u32; 8], idx_dims: [u32; 8], idx_strides: [u32; 8],
    }
}

impl OpDef for ScatterElements {
    fn name(&self) -> &'static str {
        "ScatterElements"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 3, 3)?;
        check_elementwise_indices(inputs[0], inputs[1], self.axis)?;
        if inputs[1] != inputs[2] {
            return Err(format!("indices {:?} and updates {:?} differ in shape", inputs[1], inputs[2]));
        }
        Ok(inputs[0].to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, idx, upd, ds, is) = (args.x(0), args.x(1), args.x(2), args.s(0), args.s(1));
        out.copy_from_slice(x);
        let dstr = contiguous_strides(ds);
        let istr = contiguous_strides(is);
        for (u, &i) in idx.iter().enumerate() {
            let Some(k) = wrap_index(i, ds[self.axis]) else { continue };
            let mut off = k * dstr[self.axis];
            for d in 0..is.len() {
                if d != self.axis {
                    off += (u / istr[d]) % is[d] * dstr[d];
                }
            }
            out[off] = self.reduction.apply(out[off], upd[u]);
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (idx, dy) = (cx.inputs[1], cx.dy);
        let mut out = vec![None, None, None];
        match self.reduction {
            Reduction::Add => {
                out[0] = cx.need(0).then_some(dy);
            }
            Reduction::None => {
                if cx.need(0) {
                    // The written places take nothing back to data.
                    let zeros = cx.zeros(cx.input_shape(2))?;
                    out[0] = Some(cx.node(*self, &[dy, idx, zeros])?);
                }
            }
            _ => {
                if cx.need(0) || cx.need(2) {
                    return Err(no_gradient(cx, "ScatterElements with reduction mul, max or min"));
                }
            }
        }
        if cx.need(2) {
            out[2] = Some(cx.node(GatherElements { axis: self.axis }, &[dy, idx])?);
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (ds, is) = (cx.in_shape(0), cx.in_shape(1));
        let (x, idx, upd, o) = (cx.in_loc(0), cx.in_loc(1), cx.in_loc(2), cx.out_loc());
        let n = cx.out_len();
        let params = ScatterElementsParams {
            n: n as u32,
            rank: ds.len() as u32,
            data: x.offset as u32,
            idx: idx.offset as u32,
            upd: upd.offset as u32,
            out: o.offset as u32,
            axis: self.axis as u32,
            dim: ds[self.axis] as u32,
            reduction: self.reduction.code(),
            data_dims: rank_array(ds),
            idx_dims: rank_array(is),
            idx_strides: rank_array(&contiguous_strides(is)),
        };
        Ok(vec![Dispatch::new(
            SCATTER_ELEMENTS,
            &[INDEX_WGSL],
            params,
            &[("X", x.region), ("I", idx.region), ("U", upd.region), ("O", o.region)],
            &[],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (data, idx_shape, axis) in [
            (vec![3, 4], vec![3, 2], 1),
            (vec![5, 2], vec![2, 2], 0),
            (vec![1], vec![1], 0),
            (vec![2, rng.size(3, 9), 4], vec![2, 3, 3], 1),
            (vec![4, 3, 2], vec![3, 2, 1], 0),
        ] {
            for reduction in Reduction::ALL {
                // Replacement has one answer only with distinct targets: distinct along the axis.
                let idx = if reduction == Reduction::None {
                    let along = idx_shape[axis];
                    let rows = numel(&idx_shape) / along;
                    let strides = contiguous_strides(&idx_shape);
                    let mut v = vec![0.0; numel(&idx_shape)];
                    for r in 0..rows {
                        let perm = case_distinct_indices(rng, along, data[axis]);
                        // Position of row r's first element: r spread over the dims off the axis.
                        let (mut rem, mut base) = (r, 0);
                        for d in (0..idx_shape.len()).rev().filter(|&d| d != axis) {
                            base += rem % idx_shape[d] * strides[d];
                            rem /= idx_shape[d];
                        }
                        for (t, k) in perm.into_iter().enumerate() {
                            v[base + t * strides[axis]] = k;
                        }
                    }
                    v
                } else {
                    case_indices(rng, numel(&idx_shape), data[axis])
                };
                let case = OpCase::new(
                    ScatterElements { axis, reduction },
                    vec![
                        CaseInput::uniform(data.clone(), -1.0, 1.0),
                        CaseInput::indices(idx_shape.clone(), idx),
                        CaseInput::uniform(idx_shape.clone(), -1.0, 1.0),
                    ],
                );
                let grad = matches!(reduction, Reduction::None | Reduction::Add);
                out.push(if grad { case.with_params(&[true, false, true]).with_gradient() } else { case });
            }
        }
        out
    }
}
