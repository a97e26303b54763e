//! Where: `out = c ? x : y` elementwise, the three operands broadcast the numpy way.

use crate::cpu::kernels::for_each_index;
use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::shape::{broadcast_shapes, broadcast_strides, coalesce_dims, contiguous_strides, numel};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};
use crate::wgpu_exec::uniforms::{MAX_RANK, rank_array};

const WHERE: &str = include_str!("../../../shaders/where.wgsl");

/// `x` where `c` is nonzero, else `y`. Inputs: c, x, y (broadcast).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Where;

crate::uniforms! {
    /// shaders/where.wgsl: offsets, the output dims and each operand's broadcast strides.
    pub struct WhereParams {
        n: u32, rank: u32, c: u32, x: u32, y: u32, out: u32,
        dims: [u32; 8], c_strides: [u32; 8], x_strides: [u32; 8], y_strides: [u32; 8],
    }
}

impl OpDef for Where {
    fn name(&self) -> &'static str {
        "Where"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 3, 3)?;
        broadcast_shapes(inputs[0], inputs[1])
            .and_then(|s| broadcast_shapes(&s, inputs[2]))
            .ok_or_else(|| format!("shapes {:?}, {:?} and {:?} do not broadcast", inputs[0], inputs[1], inputs[2]))
    }

    fn output_dtype(&self, inputs: &[DType]) -> DType {
        inputs.get(1).copied().unwrap_or_default()
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let o = args.out_shape;
        let st = [
            contiguous_strides(o),
            broadcast_strides(args.s(0), o),
            broadcast_strides(args.s(1), o),
            broadcast_strides(args.s(2), o),
        ];
        let (dims, st) = coalesce_dims(o, &st);
        let (c, x, y) = (args.x(0), args.x(1), args.x(2));
        for_each_index(&dims, [&st[0], &st[1], &st[2], &st[3]], |[oi, ci, xi, yi]| {
            out[oi] = if c[ci] != T::zero() { x[xi] } else { y[yi] };
        });
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (c, dy) = (cx.inputs[0], cx.dy);
        let zero = cx.constant(vec![1], vec![0.0])?;
        let mut out = vec![None, None, None];
        if cx.need(1) {
            let g = cx.node(Where, &[c, dy, zero])?;
            out[1] = Some(cx.unbroadcast(g, &cx.input_shape(1))?);
        }
        if cx.need(2) {
            let g = cx.node(Where, &[c, zero, dy])?;
            out[2] = Some(cx.unbroadcast(g, &cx.input_shape(2))?);
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let o = cx.out_shape();
        let st = [
            contiguous_strides(o),
            broadcast_strides(cx.in_shape(0), o),
            broadcast_strides(cx.in_shape(1), o),
            broadcast_strides(cx.in_shape(2), o),
        ];
        let (d, st) = coalesce_dims(o, &st);
        if d.len() > MAX_RANK {
            return Err(cx.too_many_dims(d.len()));
        }
        let (lc, lx, ly, lo) = (cx.in_loc(0), cx.in_loc(1), cx.in_loc(2), cx.out_loc());
        let n = numel(o);
        let params = WhereParams {
            n: n as u32,
            rank: d.len() as u32,
            c: lc.offset as u32,
            x: lx.offset as u32,
            y: ly.offset as u32,
            out: lo.offset as u32,
            dims: rank_array(&d),
            c_strides: rank_array(&st[1]),
            x_strides: rank_array(&st[2]),
            y_strides: rank_array(&st[3]),
        };
        Ok(vec![Dispatch::new(
            WHERE,
            &[],
            params,
            &[("C", lc.region), ("X", lx.region), ("Y", ly.region), ("O", lo.region)],
            &[],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let shapes = [
            (vec![7], vec![7], vec![7]),
            (vec![3, 1], vec![1, 4], vec![4]),
            (vec![2, 3, 4], vec![1], vec![3, 1]),
            (vec![1, rng.size(1, 9), 5], vec![2, 1, 5], vec![1]),
        ];
        let mut out = Vec::new();
        for (c, x, y) in shapes {
            let mask: Vec<f32> =
                (0..numel(&c)).map(|_| f32::from(u8::from(rng.next_u64().is_multiple_of(2)))).collect();
            out.push(OpCase::new(
                Where,
                vec![
                    CaseInput::mask(c.clone(), mask.clone()),
                    CaseInput::uniform(x.clone(), -1.0, 1.0),
                    CaseInput::uniform(y.clone(), -1.0, 1.0),
                ],
            ));
            out.push(
                OpCase::new(
                    Where,
                    vec![CaseInput::mask(c, mask), CaseInput::uniform(x, -1.0, 1.0), CaseInput::uniform(y, -1.0, 1.0)],
                )
                .with_params(&[false, true, true])
                .with_gradient(),
            );
        }
        out
    }
}
