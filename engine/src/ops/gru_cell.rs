//! The GRU cell's elementwise step (ONNX's `linear_before_reset = 1` form, PyTorch's and Keras'
//! `reset_after`) as one kernel, and its gradient as another: update and reset gates from their
//! pre-activations, the candidate `n = tanh(x_h + r * (h_prev R_h + Rb_h))` and the new state
//! `h = (1 - z) * n + z * h_prev`.

use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::lstm_cell::CELL_ACTIVATIONS;
use crate::ops::unary::sigmoid;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const GRU_CELL: &str = include_str!("../../../shaders/gru_cell.wgsl");
const GRU_CELL_GRAD: &str = include_str!("../../../shaders/gru_cell_grad.wgsl");

/// Inputs: the input projection `x` `[N, 3H]` (z, r, h blocks; every bias of z and r and the
/// input bias of h included), the recurrent projection `hr` `[N, 3H]` (`h_prev R^T`, the recurrent
/// bias of h included) and `h_prev` `[N, H]`. Output: the new state `[N, H]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GruCell;

/// The gradient of [`GruCell`]. Inputs: x, hr, h_prev, dh. Outputs: dx `[N, 3H]`, dhr `[N, 3H]`,
/// dh_prev `[N, H]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GruCellGrad;

crate::uniforms! {
    /// shaders/gru_cell.wgsl.
    pub struct GruCellParams { n: u32, hidden: u32, x: u32, hr: u32, h_prev: u32, h: u32 }
}

crate::uniforms! {
    /// shaders/gru_cell_grad.wgsl.
    pub struct GruCellGradParams {
        n: u32, hidden: u32, x: u32, hr: u32, h_prev: u32, dh: u32, dx: u32, dhr: u32, dh_prev: u32,
    }
}

/// Checks `[N, 3H]`, `[N, 3H]` and `[N, H]` (and more `[N, H]` inputs); returns N and H.
fn cell_dims(inputs: &[&[usize]]) -> std::result::Result<(usize, usize), String> {
    let x = inputs[0];
    if x.len() != 2 || !x[1].is_multiple_of(3) || inputs[1] != x {
        return Err(format!("projections {x:?} and {:?} are not both [N, 3H]", inputs[1]));
    }
    let (n, h) = (x[0], x[1] / 3);
    for s in &inputs[2..] {
        if *s != [n, h] {
            return Err(format!("{s:?} is not [N, H] = {:?} for projections {x:?}", [n, h]));
        }
    }
    Ok((n, h))
}

/// Element `j` of row `r`: (z, r, hh, n), hh the recurrent h-block term.
fn gates<T: Real>(x: &[T], hr: &[T], h: usize, row: usize, j: usize) -> (T, T, T, T) {
    let p = row * 3 * h + j;
    let z = sigmoid(x[p] + hr[p]);
    let r = sigmoid(x[p + h] + hr[p + h]);
    let hh = hr[p + 2 * h];
    (z, r, hh, (x[p + 2 * h] + r * hh).tanh_kernel())
}

impl OpDef for GruCell {
    fn name(&self) -> &'static str {
        "GruCell"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 3, 3)?;
        let (n, h) = cell_dims(inputs)?;
        Ok(vec![n, h])
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, hr, h_prev) = (args.x(0), args.x(1), args.x(2));
        let h = args.s(2)[1].max(1);
        for (k, &hp) in h_prev.iter().enumerate() {
            let (z, _, _, n) = gates(x, hr, h, k / h, k % h);
            out[k] = (T::one() - z) * n + z * hp;
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let ins = [cx.inputs[0], cx.inputs[1], cx.inputs[2], cx.dy];
        let grads = cx.nodes(GruCellGrad, &ins)?;
        Ok(vec![Some(grads[0]), Some(grads[1]), Some(grads[2])])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (x, hr, hp, h) = (cx.in_loc(0), cx.in_loc(1), cx.in_loc(2), cx.out_loc());
        let n = cx.out_len();
        let params = GruCellParams {
            n: n as u32,
            hidden: cx.out_shape()[1] as u32,
            x: x.offset as u32,
            hr: hr.offset as u32,
            h_prev: hp.offset as u32,
            h: h.offset as u32,
        };
        let bindings = [("X", x.region), ("HR", hr.region), ("HP", hp.region), ("H", h.region)];
        Ok(vec![Dispatch::new(GRU_CELL, &[CELL_ACTIVATIONS], params, &bindings, &[], cx.grid(n))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (n, h) in [(1, 1), (3, 5), (rng.size(1, 9), rng.size(1, 17))] {
            let shapes = [vec![n, 3 * h], vec![n, 3 * h], vec![n, h]];
            out.push(OpCase::uniform(GruCell, &shapes, -3.0, 3.0).with_gradient());
        }
        out
    }
}

impl OpDef for GruCellGrad {
    fn name(&self) -> &'static str {
        "GruCellGrad"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 4, 4)?;
        cell_dims(inputs)?;
        Ok(inputs[0].to_vec())
    }

    fn extra_outputs(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<(Vec<usize>, DType)>, String> {
        Ok(vec![(inputs[1].to_vec(), DType::F32), (inputs[2].to_vec(), DType::F32)])
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let mut dhr = vec![T::zero(); out.len()];
        let mut dhp = vec![T::zero(); args.x(2).len()];
        self.eval_outputs(args, &mut [out, &mut dhr, &mut dhp]);
    }

    fn eval_outputs<T: Real>(&self, args: &CpuArgs<'_, T>, outs: &mut [&mut [T]]) {
        let (x, hr, h_prev, dh) = (args.x(0), args.x(1), args.x(2), args.x(3));
        let h = args.s(2)[1].max(1);
        let one = T::one();
        for (k, &hp) in h_prev.iter().enumerate() {
            let (row, j) = (k / h, k % h);
            let (z, r, hh, n) = gates(x, hr, h, row, j);
            let d = dh[k];
            let dn_pre = d * (one - z) * (one - n * n);
            let dz_pre = d * (hp - n) * z * (one - z);
            let dr_pre = dn_pre * hh * r * (one - r);
            let p = row * 3 * h + j;
            let (dx, rest) = outs.split_at_mut(1);
            dx[0][p] = dz_pre;
            dx[0][p + h] = dr_pre;
            dx[0][p + 2 * h] = dn_pre;
            if let Some(dhr) = rest.get_mut(0) {
                dhr[p] = dz_pre;
                dhr[p + h] = dr_pre;
                dhr[p + 2 * h] = dn_pre * r;
            }
            if let Some(dhp) = rest.get_mut(1) {
                dhp[k] = d * z;
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "GruCellGrad"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (x, hr, hp, dh) = (cx.in_loc(0), cx.in_loc(1), cx.in_loc(2), cx.in_loc(3));
        let (dx, dhr, dhp) = (cx.out_loc(), cx.out_loc_of(1), cx.out_loc_of(2));
        let s = cx.in_shape(2);
        let n = s[0] * s[1];
        let params = GruCellGradParams {
            n: n as u32,
            hidden: s[1] as u32,
            x: x.offset as u32,
            hr: hr.offset as u32,
            h_prev: hp.offset as u32,
            dh: dh.offset as u32,
            dx: dx.offset as u32,
            dhr: dhr.offset as u32,
            dh_prev: dhp.offset as u32,
        };
        let bindings = [
            ("X", x.region),
            ("HR", hr.region),
            ("HP", hp.region),
            ("DH", dh.region),
            ("DX", dx.region),
            ("DHR", dhr.region),
            ("DHP", dhp.region),
        ];
        Ok(vec![Dispatch::new(GRU_CELL_GRAD, &[CELL_ACTIVATIONS], params, &bindings, &[], cx.grid(n))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (n, h) in [(1, 1), (4, 3), (rng.size(1, 9), rng.size(1, 17))] {
            let shapes = [vec![n, 3 * h], vec![n, 3 * h], vec![n, h], vec![n, h]];
            out.push(OpCase::uniform(GruCellGrad, &shapes, -3.0, 3.0));
        }
        out
    }
}
