//! The positions of max pooling's maxima (ONNX MaxPool's second output, `Indices`).

use crate::cpu::real::Real;
use crate::dtype::{DType, MAX_EXACT_INT};
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::conv::WINDOW;
use crate::ops::pool::{PoolParams, all_pools};
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, PoolAttrs, PoolKind, VjpCtx};
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};
use crate::window::Window3;

const POOL_ARGMAX: &str = include_str!("../../../shaders/pool_argmax.wgsl");

/// For each max-pooling window, the int64 position of its first maximum as a flat index into the
/// whole N,C,spatial input (padding never wins): `nc * spatial + p`, `p` the position within the
/// plane in row-major order, or in column-major order (ONNX `storage_order=1`). Input: x.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolArgMax {
    /// The pooling (max).
    pub attrs: PoolAttrs,
    /// Positions within the plane in column-major order.
    pub column_major: bool,
}

/// Row-major position `s` in a plane of dims `dims` (d, h, w) as a column-major position.
fn to_column_major(s: usize, dims: [usize; 3]) -> usize {
    let [d, h, w] = dims;
    let (z, y, x) = (s / (h * w), (s / w) % h, s % w);
    (x * h + y) * d + z
}

impl OpDef for PoolArgMax {
    fn name(&self) -> &'static str {
        "PoolArgMax"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        if self.attrs.kind != PoolKind::Max {
            return Err("the positions of maxima exist for max pooling only".into());
        }
        if inputs.first().is_some_and(|x| numel(x) as f64 > MAX_EXACT_INT) {
            return Err("an input of more than 2^24 elements: its positions are not exact in the engine".into());
        }
        self.attrs.output_shape(inputs)
    }

    fn output_dtype(&self, _inputs: &[DType]) -> DType {
        DType::I64
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, s) = (args.x(0), args.s(0));
        let w: Window3 = self.attrs.window(&s[2..], &args.out_shape[2..]);
        let (isp, osp, kl) = (w.input_len(), w.output_len(), w.kernel_len());
        let mut best: Vec<Option<(T, usize)>> = vec![None; osp];
        for nc in 0..s[0] * s[1] {
            let src = &x[nc * isp..(nc + 1) * isp];
            best.fill(None);
            for k in 0..kl {
                w.taps(Window3::unflatten(w.kernel, k), |o, at| {
                    if let Some(at) = at
                        && best[o].is_none_or(|(v, _)| src[at] > v)
                    {
                        best[o] = Some((src[at], at));
                    }
                });
            }
            for (o, b) in best.iter().enumerate() {
                let p = b.map_or(0, |(_, at)| at);
                let p = if self.column_major { to_column_major(p, w.input) } else { p };
                out[nc * osp + o] = T::count(nc * isp + p);
            }
        }
    }

    fn vjp(&self, _cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Ok(vec![None])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let w = self.attrs.window(&cx.in_shape(0)[2..], &cx.out_shape()[2..]);
        let (x, o, n) = (cx.in_loc(0), cx.out_loc(), cx.out_len());
        let mut window = [0u32; 21];
        window.copy_from_slice(&w.to_u32s());
        let kind = u32::from(self.column_major);
        let params = PoolParams { n: n as u32, x: x.offset as u32, out: o.offset as u32, kind, window };
        Ok(vec![Dispatch::new(POOL_ARGMAX, &[WINDOW], params, &[("X", x.region), ("O", o.region)], &[], cx.grid(n))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for nd in 1..=3 {
            for attrs in all_pools(nd).into_iter().filter(|a| a.kind == PoolKind::Max) {
                let mut x = vec![2, 3];
                x.extend(vec![if nd == 2 { rng.size(5, 11) } else { 7 }; nd]);
                for column_major in [false, true] {
                    let op = PoolArgMax { attrs: attrs.clone(), column_major };
                    out.push(OpCase::uniform(op, std::slice::from_ref(&x), -1.0, 1.0));
                }
            }
        }
        out
    }
}
