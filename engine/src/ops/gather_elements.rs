//! GatherElements: each output element read from `data` at its own coordinates, the axis
//! coordinate replaced by its index (`torch.gather`).

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::index::{INDEX_WGSL, Reduction, case_indices, wrap_index};
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, ScatterElements, VjpCtx, arity};
use crate::shape::{contiguous_strides, numel};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};
use crate::wgpu_exec::uniforms::{MAX_RANK, rank_array};

const GATHER_ELEMENTS: &str = include_str!("../../../shaders/gather_elements.wgsl");

/// `out[i] = data[i with coordinate axis := idx[i]]`; the output has the indices' shape. Inputs:
/// data, indices (same rank; out-of-range indices read 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherElements {
    /// The axis indexed.
    pub axis: usize,
}

crate::uniforms! {
    /// shaders/gather_elements.wgsl.
    pub struct GatherElementsParams {
        n: u32, rank: u32, data: u32, idx: u32, out: u32, axis: u32, dim: u32,
        idx_dims: [u32; 8], data_strides: [u32; 8],
    }
}

/// Checks that `idx` may index `data` elementwise along `axis` (same rank, no larger off the axis).
pub fn check_elementwise_indices(data: &[usize], idx: &[usize], axis: usize) -> std::result::Result<(), String> {
    if axis >= data.len() || idx.len() != data.len() {
        return Err(format!("indices {idx:?} and data {data:?} differ in rank, or axis {axis} is out of range"));
    }
    if (0..data.len()).any(|d| d != axis && idx[d] > data[d]) {
        return Err(format!("indices {idx:?} are larger than data {data:?} off axis {axis}"));
    }
    if data.len() > MAX_RANK {
        return Err(format!("rank {} is above the {MAX_RANK} the kernels handle", data.len()));
    }
    Ok(())
}

impl OpDef for GatherElements {
    fn name(&self) -> &'static str {
        "GatherElements"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        check_elementwise_indices(inputs[0], inputs[1], self.axis)?;
        Ok(inputs[1].to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, idx, ds, is) = (args.x(0), args.x(1), args.s(0), args.s(1));
        let dstr = contiguous_strides(ds);
        let istr = contiguous_strides(is);
        for (i, o) in out.iter_mut().enumerate() {
            let mut off = 0;
            for d in 0..is.len() {
                if d != self.axis {
                    off += (i / istr[d]) % is[d] * dstr[d];
                }
            }
            *o = match wrap_index(idx[i], ds[self.axis]) {
                Some(k) => x[off + k * dstr[self.axis]],
                None => T::zero(),
            };
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let mut out = vec![None, None];
        if cx.need(0) {
            let zeros = cx.zeros(cx.input_shape(0))?;
            let (idx, dy) = (cx.inputs[1], cx.dy);
            let op = ScatterElements { axis: self.axis, reduction: Reduction::Add };
            out[0] = Some(cx.node(op, &[zeros, idx, dy])?);
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (ds, is) = (cx.in_shape(0), cx.in_shape(1));
        let (x, idx, o) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let n = cx.out_len();
        let params = GatherElementsParams {
            n: n as u32,
            rank: is.len() as u32,
            data: x.offset as u32,
            idx: idx.offset as u32,
            out: o.offset as u32,
            axis: self.axis as u32,
            dim: ds[self.axis] as u32,
            idx_dims: rank_array(is),
            data_strides: rank_array(&contiguous_strides(ds)),
        };
        Ok(vec![Dispatch::new(
            GATHER_ELEMENTS,
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
            (vec![3, 4], vec![3, 6], 1),
            (vec![5, 2], vec![2, 2], 0),
            (vec![1], vec![3], 0),
            (vec![2, rng.size(3, 9), 4], vec![2, 3, 3], 2),
            (vec![4, 3, 2], vec![7, 2, 1], 0),
        ] {
            let idx = case_indices(rng, numel(&idx_shape), data[axis]);
            let inputs = vec![
                CaseInput::uniform(data.clone(), -1.0, 1.0).as_param(),
                CaseInput::indices(idx_shape.clone(), idx),
            ];
            out.push(OpCase::new(GatherElements { axis }, inputs.clone()).with_params(&[false, false]));
            out.push(OpCase::new(GatherElements { axis }, inputs).with_gradient());
        }
        out
    }
}
