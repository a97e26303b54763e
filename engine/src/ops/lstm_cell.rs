//! The LSTM cell's elementwise part as one kernel, and its gradient as another: the gates from
//! their pre-activations (ONNX order i, o, f, c; sigmoid, sigmoid, sigmoid, tanh), the new cell
//! state and the new hidden state. Unrolled LSTM layers use it where their activations are the
//! defaults and there are no peepholes or clip; decomposed, the same step is fifteen nodes forward
//! and about thirty backward.

use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::unary::sigmoid;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const LSTM_CELL: &str = include_str!("../../../shaders/lstm_cell.wgsl");
const LSTM_CELL_GRAD: &str = include_str!("../../../shaders/lstm_cell_grad.wgsl");
/// The gate activations the LSTM and GRU cell shaders share (`sigm`, `th`).
pub(crate) const CELL_ACTIVATIONS: &str = include_str!("../../../shaders/cell_activations.wgsl");

/// Inputs: the gate pre-activations `[N, 4H]` (i, o, f, c blocks) and the previous cell state
/// `[N, H]`. Outputs: the hidden state `h = o * tanh(c)` and the cell state
/// `c = f * c_prev + i * g`, both `[N, H]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmCell;

/// The gradient of [`LstmCell`]. Inputs: the pre-activations, the previous cell state, and the
/// gradients of h and c. Outputs: the gradient of the pre-activations `[N, 4H]` and of the previous
/// cell state `[N, H]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmCellGrad;

crate::uniforms! {
    /// shaders/lstm_cell.wgsl.
    pub struct LstmCellParams { n: u32, hidden: u32, pre: u32, c_prev: u32, h: u32, c: u32 }
}

crate::uniforms! {
    /// shaders/lstm_cell_grad.wgsl.
    pub struct LstmCellGradParams {
        n: u32, hidden: u32, pre: u32, c_prev: u32, dh: u32, dc: u32, d_pre: u32, d_c_prev: u32,
    }
}

/// Checks `[N, 4H]` and `[N, H]` (and more `[N, H]` inputs); returns N and H.
fn cell_dims(inputs: &[&[usize]]) -> std::result::Result<(usize, usize), String> {
    let pre = inputs[0];
    if pre.len() != 2 || !pre[1].is_multiple_of(4) {
        return Err(format!("pre-activations {pre:?} are not [N, 4H]"));
    }
    let (n, h) = (pre[0], pre[1] / 4);
    for s in &inputs[1..] {
        if *s != [n, h] {
            return Err(format!("{s:?} is not [N, H] = {:?} for pre-activations {pre:?}", [n, h]));
        }
    }
    Ok((n, h))
}

/// The gates of element `j` of row `r`: (i, o, f, g).
fn gates<T: Real>(pre: &[T], h: usize, r: usize, j: usize) -> (T, T, T, T) {
    let p = r * 4 * h + j;
    (sigmoid(pre[p]), sigmoid(pre[p + h]), sigmoid(pre[p + 2 * h]), pre[p + 3 * h].tanh_kernel())
}

impl OpDef for LstmCell {
    fn name(&self) -> &'static str {
        "LstmCell"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        let (n, h) = cell_dims(inputs)?;
        Ok(vec![n, h])
    }

    fn extra_outputs(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<(Vec<usize>, DType)>, String> {
        Ok(vec![(self.output_shape(inputs)?, DType::F32)])
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let mut c = vec![T::zero(); out.len()];
        self.eval_outputs(args, &mut [out, &mut c]);
    }

    fn eval_outputs<T: Real>(&self, args: &CpuArgs<'_, T>, outs: &mut [&mut [T]]) {
        let (pre, c_prev) = (args.x(0), args.x(1));
        let h = args.s(1)[1];
        for (k, &cp) in c_prev.iter().enumerate() {
            let (i, o, f, g) = gates(pre, h, k / h.max(1), k % h.max(1));
            let c = f * cp + i * g;
            outs[0][k] = o * c.tanh_kernel();
            if let Some(co) = outs.get_mut(1) {
                co[k] = c;
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let dc = match cx.output_grad(1) {
            Some(dc) => dc,
            None => cx.zeros(cx.shape(cx.outputs[1]))?,
        };
        let grads = cx.nodes(LstmCellGrad, &[cx.inputs[0], cx.inputs[1], cx.dy, dc])?;
        Ok(vec![Some(grads[0]), Some(grads[1])])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (pre, c_prev, h, c) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc(), cx.out_loc_of(1));
        let n = cx.out_len();
        let params = LstmCellParams {
            n: n as u32,
            hidden: cx.out_shape()[1] as u32,
            pre: pre.offset as u32,
            c_prev: c_prev.offset as u32,
            h: h.offset as u32,
            c: c.offset as u32,
        };
        let bindings = [("P", pre.region), ("CP", c_prev.region), ("H", h.region), ("C", c.region)];
        Ok(vec![Dispatch::new(LSTM_CELL, &[CELL_ACTIVATIONS], params, &bindings, &[], cx.grid(n))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (n, h) in [(1, 1), (3, 5), (rng.size(1, 9), rng.size(1, 17))] {
            out.push(OpCase::uniform(LstmCell, &[vec![n, 4 * h], vec![n, h]], -3.0, 3.0).with_gradient());
        }
        out
    }
}

impl OpDef for LstmCellGrad {
    fn name(&self) -> &'static str {
        "LstmCellGrad"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 4, 4)?;
        let (n, h) = cell_dims(inputs)?;
        Ok(vec![n, 4 * h])
    }

    fn extra_outputs(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<(Vec<usize>, DType)>, String> {
        Ok(vec![(inputs[1].to_vec(), DType::F32)])
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let mut dcp = vec![T::zero(); args.x(1).len()];
        self.eval_outputs(args, &mut [out, &mut dcp]);
    }

    fn eval_outputs<T: Real>(&self, args: &CpuArgs<'_, T>, outs: &mut [&mut [T]]) {
        let (pre, c_prev, dh, dc) = (args.x(0), args.x(1), args.x(2), args.x(3));
        let h = args.s(1)[1];
        let one = T::one();
        for (k, &cp) in c_prev.iter().enumerate() {
            let (r, j) = (k / h.max(1), k % h.max(1));
            let (i, o, f, g) = gates(pre, h, r, j);
            let t = (f * cp + i * g).tanh_kernel();
            let dct = dc[k] + dh[k] * o * (one - t * t);
            let p = r * 4 * h + j;
            outs[0][p] = dct * g * i * (one - i);
            outs[0][p + h] = dh[k] * t * o * (one - o);
            outs[0][p + 2 * h] = dct * cp * f * (one - f);
            outs[0][p + 3 * h] = dct * i * (one - g * g);
            if let Some(d) = outs.get_mut(1) {
                d[k] = dct * f;
            }
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "LstmCellGrad"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (pre, c_prev, dh, dc) = (cx.in_loc(0), cx.in_loc(1), cx.in_loc(2), cx.in_loc(3));
        let (d_pre, d_c_prev) = (cx.out_loc(), cx.out_loc_of(1));
        let s = cx.in_shape(1);
        let n = s[0] * s[1];
        let params = LstmCellGradParams {
            n: n as u32,
            hidden: s[1] as u32,
            pre: pre.offset as u32,
            c_prev: c_prev.offset as u32,
            dh: dh.offset as u32,
            dc: dc.offset as u32,
            d_pre: d_pre.offset as u32,
            d_c_prev: d_c_prev.offset as u32,
        };
        let bindings = [
            ("P", pre.region),
            ("CP", c_prev.region),
            ("DH", dh.region),
            ("DC", dc.region),
            ("DP", d_pre.region),
            ("DCP", d_c_prev.region),
        ];
        Ok(vec![Dispatch::new(LSTM_CELL_GRAD, &[CELL_ACTIVATIONS], params, &bindings, &[], cx.grid(n))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for (n, h) in [(1, 1), (4, 3), (rng.size(1, 9), rng.size(1, 17))] {
            let hs = vec![n, h];
            out.push(OpCase::uniform(LstmCellGrad, &[vec![n, 4 * h], hs.clone(), hs.clone(), hs], -3.0, 3.0));
        }
        out
    }
}
