//! OneHot: integer indices expanded along a new axis of `depth` entries, `on` at the index and
//! `off` elsewhere.

use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::index::{INDEX_WGSL, case_indices, wrap_index};
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const ONE_HOT: &str = include_str!("../../../shaders/one_hot.wgsl");

/// `out[o, c, r] = values[1] if idx[o, r] == c else values[0]`, the new axis of `depth` entries at
/// `axis` of the output. Inputs: indices (negative ones count from the end; out-of-range ones give
/// a row of `off`), values `[off, on]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneHot {
    /// The new axis, in the output's dims.
    pub axis: usize,
    /// Its length.
    pub depth: usize,
}

crate::uniforms! {
    /// shaders/one_hot.wgsl.
    pub struct OneHotParams { n: u32, idx: u32, vals: u32, out: u32, depth: u32, inner: u32 }
}

impl OpDef for OneHot {
    fn name(&self) -> &'static str {
        "OneHot"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        let (i, v) = (inputs[0], inputs[1]);
        if numel(v) != 2 {
            return Err(format!("values {v:?} must hold two entries, [off, on]"));
        }
        if self.axis > i.len() || self.depth == 0 {
            return Err(format!("axis {} or depth {} does not fit indices {i:?}", self.axis, self.depth));
        }
        let mut out = i.to_vec();
        out.insert(self.axis, self.depth);
        Ok(out)
    }

    fn output_dtype(&self, inputs: &[DType]) -> DType {
        inputs.get(1).copied().unwrap_or_default()
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (idx, vals) = (args.x(0), args.x(1));
        let inner = numel(&args.out_shape[self.axis + 1..]);
        for (e, o) in out.iter_mut().enumerate() {
            let (r, t) = (e % inner, e / inner);
            let (c, outer) = (t % self.depth, t / self.depth);
            let hot = wrap_index(idx[outer * inner + r], self.depth) == Some(c);
            *o = vals[usize::from(hot)];
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        if cx.need(1) {
            return Err(crate::EngineError::Unsupported(format!(
                "node `{}`: OneHot's values are trained; the importer makes them constants",
                cx.name
            )));
        }
        Ok(vec![None, None])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (idx, vals, o) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let n = cx.out_len();
        let params = OneHotParams {
            n: n as u32,
            idx: idx.offset as u32,
            vals: vals.offset as u32,
            out: o.offset as u32,
            depth: self.depth as u32,
            inner: numel(&cx.out_shape()[self.axis + 1..]) as u32,
        };
        Ok(vec![Dispatch::new(
            ONE_HOT,
            &[INDEX_WGSL],
            params,
            &[("I", idx.region), ("V", vals.region), ("O", o.region)],
            &[],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (shape, axis, depth) in
            [(vec![5], 1, 4), (vec![3, 2], 0, 6), (vec![2, 3], 1, 1), (vec![rng.size(1, 20), 3], 2, 11), (vec![], 0, 3)]
        {
            // Indices in [-depth - 1, depth]: out-of-range ones too.
            let idx: Vec<f32> = case_indices(rng, numel(&shape), depth + 1).into_iter().collect();
            out.push(OpCase::new(
                OneHot { axis, depth },
                vec![CaseInput::indices(shape, idx), CaseInput::values(vec![2], vec![-0.5, 3.0])],
            ));
        }
        out
    }
}
