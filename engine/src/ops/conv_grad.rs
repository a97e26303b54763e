//! The gradients of a convolution: with respect to its input (`dx = col2im(W_g^T dy_g)`) and to
//! its weight (`dW_g = dy_g col_g^T` over the whole batch).

use crate::cpu::gemm::GemmShape;
use crate::cpu::im2col::{channels_first_to_rows, col2im_batched, im2col_batched};
use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::conv::{ConvCase, WINDOW, WindowParams, conv_case, im2col_dispatch};
use crate::ops::{CaseInput, CaseRng, ConvAttrs, CpuArgs, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::plan::Location;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx, MatMulCall, matmul_dispatches};
use crate::window::Window3;

const COL2IM: &str = include_str!("../../../shaders/col2im.wgsl");

/// Gradient of a convolution with respect to its input. Inputs: dy, w.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvGradInput {
    /// The forward convolution.
    pub attrs: ConvAttrs,
    /// The forward input's shape.
    pub input_shape: Vec<usize>,
}

/// Gradient of a convolution with respect to its weight. Inputs: x, dy.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvGradWeight {
    /// The forward convolution.
    pub attrs: ConvAttrs,
    /// The weight's shape.
    pub weight_shape: Vec<usize>,
}

/// Gradient of a convolution with respect to its input: col_g = W_g^T dy_g over the whole batch,
/// then col2im.
#[allow(clippy::too_many_arguments)] // the op's operands and attributes
fn conv_grad_input<T: Real>(
    dy: &[T],
    weight: &[T],
    x_shape: &[usize],
    m: usize,
    group: usize,
    w: &Window3,
    dx: &mut [T],
) {
    let (n, c) = (x_shape[0], x_shape[1]);
    let (osp, kl) = (w.output_len(), w.kernel_len());
    let cols = n * osp;
    let (mg, kg) = (m / group, c / group * kl);
    let mut rows = vec![T::zero(); m * cols];
    channels_first_to_rows(dy, n, m, osp, &mut rows);
    let mut col = vec![T::zero(); c * kl * cols];
    // col_g (kg x cols) = W_g^T (kg x mg) @ dy_g (mg x cols)
    let shape = GemmShape { m: kg, k: mg, n: cols, a: (1, kg), b: (cols, 1), c: (cols, 1) };
    for g in 0..group {
        let a = &weight[g * mg * kg..(g + 1) * mg * kg];
        T::gemm(
            shape,
            T::one(),
            a,
            &rows[g * mg * cols..(g + 1) * mg * cols],
            T::zero(),
            &mut col[g * kg * cols..(g + 1) * kg * cols],
        );
    }
    col2im_batched(&col, n, c, w, dx);
}

/// Gradient of a convolution with respect to its weight: dW_g = dy_g @ col_g^T over the whole batch.
fn conv_grad_weight<T: Real>(x: &[T], x_shape: &[usize], dy: &[T], m: usize, group: usize, w: &Window3, dw: &mut [T]) {
    let (n, c) = (x_shape[0], x_shape[1]);
    let (osp, kl) = (w.output_len(), w.kernel_len());
    let cols = n * osp;
    let (mg, kg) = (m / group, c / group * kl);
    let mut col = vec![T::zero(); c * kl * cols];
    im2col_batched(x, n, c, w, &mut col);
    let mut rows = vec![T::zero(); m * cols];
    channels_first_to_rows(dy, n, m, osp, &mut rows);
    let shape = GemmShape { m: mg, k: cols, n: kg, a: (cols, 1), b: (1, cols), c: (kg, 1) };
    for g in 0..group {
        T::gemm(
            shape,
            T::one(),
            &rows[g * mg * cols..(g + 1) * mg * cols],
            &col[g * kg * cols..(g + 1) * kg * cols],
            T::zero(),
            &mut dw[g * mg * kg..(g + 1) * mg * kg],
        );
    }
}

/// The gradient cases: (spatial dims, batch, in, out, size, kernel, stride, dilation, pad, group).
fn grad_cases(rng: &mut CaseRng) -> Vec<ConvCase> {
    vec![
        (2, 3, 1, 4, 8, 3, 1, 1, 0, 1),
        (2, 2, 4, 6, 7, 3, 2, 1, 1, 2),
        (1, 2, 3, 2, 9, 2, 2, 2, 1, 1),
        (2, 2, 3, 5, 5, 1, 1, 1, 0, 1),
        (3, 1, 2, 2, 5, 2, 1, 1, 1, 1),
        (2, rng.size(1, 3), 2, rng.size(1, 5), rng.size(4, 11), 3, 2, 1, 1, 1),
    ]
}

impl OpDef for ConvGradInput {
    fn name(&self) -> &'static str {
        "ConvGradInput"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        // dy must be the convolution's output for this input and weight.
        let y = self.attrs.output_shape(&[&self.input_shape, inputs[1]])?;
        if y != inputs[0] {
            return Err(format!("dy {:?} is not the output {y:?} of the convolution", inputs[0]));
        }
        Ok(self.input_shape.clone())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let a = &self.attrs;
        let w = a.window(&self.input_shape[2..], &args.s(0)[2..]);
        conv_grad_input(args.x(0), args.x(1), &self.input_shape, args.s(1)[0], a.group, &w, out);
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        // y = A(w)^T x, the adjoint of the convolution x' -> A(w) x' (a transposed convolution, as
        // ONNX ConvTranspose imports): dx = conv(g, w), dw = the convolution's weight gradient with
        // g as its input and x as its output gradient.
        let (x, w, g) = (cx.inputs[0], cx.inputs[1], cx.dy);
        let mut out = vec![None, None];
        if cx.need(0) {
            out[0] = Some(cx.node(self.attrs.clone(), &[g, w])?);
        }
        if cx.need(1) {
            let weight_shape = cx.shape(w);
            out[1] = Some(cx.node(ConvGradWeight { attrs: self.attrs.clone(), weight_shape }, &[g, x])?);
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let a = &self.attrs;
        let (dyl, wl, ol) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let dys = cx.in_shape(0);
        let w = a.window(&self.input_shape[2..], &dys[2..]);
        let (n, c, m) = (self.input_shape[0], self.input_shape[1], dys[1]);
        let (osp, kl) = (w.output_len(), w.kernel_len());
        let (mg, kg) = (m / a.group, c / a.group * kl);
        let col = cx.scratch()?;
        // col[n, g] (kg x osp) = W[g]^T (kg x mg) @ dy[n, g] (mg x osp)
        let mut out = matmul_dispatches(
            cx.target,
            MatMulCall {
                m: kg,
                n: osp,
                k: mg,
                batch_hi: n,
                batch_lo: a.group,
                a: (wl, [0, mg * kg], 1, kg),
                b: (dyl, [m * osp, mg * osp], osp, 1),
                c: (col, [c * kl * osp, kg * osp], osp),
                alpha: 1.0,
                beta: 0.0,
            },
        );
        let total = cx.out_len();
        out.push(Dispatch::new(
            COL2IM,
            &[WINDOW],
            WindowParams::new(total, col, ol, &w),
            &[("X", col.region), ("O", ol.region)],
            &[],
            cx.grid(total),
        ));
        Ok(out)
    }

    fn scratch_len(&self, inputs: &[&[usize]], _output: &[usize]) -> usize {
        self.attrs.columns_len(&self.input_shape, inputs[0])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        grad_cases(rng)
            .into_iter()
            .filter_map(|c| {
                let (attrs, x, w) = conv_case(c);
                let out = attrs.output_shape(&[&x, &w]).ok()?;
                Some(OpCase::new(
                    ConvGradInput { attrs, input_shape: x },
                    vec![CaseInput::uniform(out, -1.0, 1.0), CaseInput::uniform(w, -1.0, 1.0).as_param()],
                ))
            })
            .enumerate()
            // A transposed convolution trains: its gradient checked on a few of the cases.
            .map(|(i, c)| if i % 2 == 0 { c.with_gradient() } else { c })
            .collect()
    }
}

impl OpDef for ConvGradWeight {
    fn name(&self) -> &'static str {
        "ConvGradWeight"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        // dy must be the convolution's output for this input and weight.
        let y = self.attrs.output_shape(&[inputs[0], &self.weight_shape])?;
        if y != inputs[1] {
            return Err(format!("dy {:?} is not the output {y:?} of the convolution", inputs[1]));
        }
        Ok(self.weight_shape.clone())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let a = &self.attrs;
        let w = a.window(&args.s(0)[2..], &args.s(1)[2..]);
        conv_grad_weight(args.x(0), args.s(0), args.x(1), self.weight_shape[0], a.group, &w, out);
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "ConvGradWeight"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let a = &self.attrs;
        let (xl, dyl, ol) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let (xs, dys) = (cx.in_shape(0).to_vec(), cx.in_shape(1).to_vec());
        let w: Window3 = a.window(&xs[2..], &dys[2..]);
        let (n, c, m) = (xs[0], xs[1], self.weight_shape[0]);
        let (osp, kl) = (w.output_len(), w.kernel_len());
        let (mg, kg) = (m / a.group, c / a.group * kl);
        let mut out = Vec::new();
        let cols = if a.is_pointwise() {
            xl
        } else {
            let col = cx.scratch()?;
            out.push(im2col_dispatch(cx, &xs, xl, col, &w));
            col
        };
        // dW[g] (mg x kg) += dy[n, g] (mg x osp) @ col[n, g]^T (osp x kg), one sample at a time.
        for b in 0..n {
            out.extend(matmul_dispatches(
                cx.target,
                MatMulCall {
                    m: mg,
                    n: kg,
                    k: osp,
                    batch_hi: 1,
                    batch_lo: a.group,
                    a: (Location { region: dyl.region, offset: dyl.offset + b * m * osp }, [0, mg * osp], osp, 1),
                    b: (
                        Location { region: cols.region, offset: cols.offset + b * c * kl * osp },
                        [0, kg * osp],
                        1,
                        osp,
                    ),
                    c: (ol, [0, mg * kg], kg),
                    alpha: 1.0,
                    beta: if b == 0 { 0.0 } else { 1.0 },
                },
            ));
        }
        Ok(out)
    }

    fn scratch_len(&self, inputs: &[&[usize]], _output: &[usize]) -> usize {
        if self.attrs.is_pointwise() { 0 } else { self.attrs.columns_len(inputs[0], inputs[1]) }
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        grad_cases(rng)
            .into_iter()
            .filter_map(|c| {
                let (attrs, x, w) = conv_case(c);
                let out = attrs.output_shape(&[&x, &w]).ok()?;
                Some(OpCase::uniform(ConvGradWeight { attrs, weight_shape: w }, &[x, out], -1.0, 1.0))
            })
            .collect()
    }
}
