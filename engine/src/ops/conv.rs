//! N-d convolution, layout N,C,spatial: `y[n, m] = sum_{c in group(m), k} w[m, c, k] x[n, c, o*s + k*d - p] + b[m]`,
//! computed as im2col and one GEMM per group over the whole batch (CPU and WGSL alike).

use crate::cpu::gemm::GemmShape;
use crate::cpu::im2col::im2col_batched;
use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::binary::{BinaryParams, binary_dispatch};
use crate::ops::pool::window_output;
use crate::ops::{
    BinaryOp, CaseInput, CaseRng, ConvGradInput, ConvGradWeight, CpuArgs, OpCase, OpDef, Reduce, ReduceOp, VjpCtx,
    arity,
};
use crate::plan::Location;
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx, MatMulCall, matmul_dispatches};
use crate::window::Window3;

const IM2COL: &str = include_str!("../../../shaders/im2col.wgsl");
/// The window helpers of the im2col, col2im and pooling kernels.
pub const WINDOW: &str = include_str!("../../../shaders/window.wgsl");

/// Convolution attributes, normalised: explicit pads, one entry per spatial dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAttrs {
    /// Kernel size per spatial dimension.
    pub kernel: Vec<usize>,
    /// Stride per spatial dimension.
    pub strides: Vec<usize>,
    /// Dilation per spatial dimension.
    pub dilations: Vec<usize>,
    /// Padding before each spatial dimension.
    pub pads_begin: Vec<usize>,
    /// Padding after each spatial dimension.
    pub pads_end: Vec<usize>,
    /// Number of groups (channels split into independent convolutions).
    pub group: usize,
}

impl ConvAttrs {
    /// The window geometry for an input of spatial dims `input` and an output of `output`.
    pub fn window(&self, input: &[usize], output: &[usize]) -> Window3 {
        Window3::new(input, output, &self.kernel, &self.strides, &self.dilations, &self.pads_begin, &self.pads_end)
    }

    /// A 1x1 convolution without stride or padding: a plain GEMM, no im2col.
    pub fn is_pointwise(&self) -> bool {
        self.kernel.iter().all(|&k| k == 1)
            && self.strides.iter().all(|&s| s == 1)
            && self.pads_begin.iter().chain(&self.pads_end).all(|&p| p == 0)
    }

    /// Elements of the im2col columns for input `x` and output `out`.
    pub fn columns_len(&self, x: &[usize], out: &[usize]) -> usize {
        x[0] * x[1] * self.kernel.iter().product::<usize>() * numel(&out[2..])
    }
}

crate::uniforms! {
    /// shaders/im2col.wgsl, shaders/col2im.wgsl: the element count, source and destination
    /// offsets, and the window geometry ([`Window3::to_u32s`]).
    pub struct WindowParams { n: u32, x: u32, out: u32, window: [u32; 21] }
}

impl WindowParams {
    /// The block for `n` invocations from `x` to `out` over window `w`.
    pub fn new(n: usize, x: Location, out: Location, w: &Window3) -> Self {
        let mut window = [0u32; 21];
        window.copy_from_slice(&w.to_u32s());
        WindowParams { n: n as u32, x: x.offset as u32, out: out.offset as u32, window }
    }
}

/// The im2col dispatch unfolding `x` (shape `xs`) into columns at `col`.
pub fn im2col_dispatch(cx: &LowerCtx<'_>, xs: &[usize], x: Location, col: Location, w: &Window3) -> Dispatch {
    let total = xs[0] * xs[1] * w.kernel_len() * w.output_len();
    Dispatch::new(
        IM2COL,
        &[WINDOW],
        WindowParams::new(total, x, col, w),
        &[("X", x.region), ("O", col.region)],
        &[],
        cx.grid(total),
    )
}

/// The output shape of a convolution of inputs x, w (and bias).
fn conv_output_shape(a: &ConvAttrs, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
    let (x, w) = (inputs[0], inputs[1]);
    let nd = a.kernel.len();
    if x.len() != nd + 2 || w.len() != nd + 2 {
        return Err(format!("input {x:?} and weight {w:?} do not fit a {nd}-d convolution"));
    }
    if a.group == 0 || x[1] % a.group != 0 || w[0] % a.group != 0 || w[1] * a.group != x[1] {
        return Err(format!("channels: input {x:?}, weight {w:?}, group {}", a.group));
    }
    if w[2..] != a.kernel[..] {
        return Err(format!("weight {w:?} does not match kernel {:?}", a.kernel));
    }
    if let Some(b) = inputs.get(2)
        && numel(b) != w[0]
    {
        return Err(format!("bias {b:?} does not match {} output channels", w[0]));
    }
    let mut out = vec![x[0], w[0]];
    for i in 0..nd {
        out.push(window_output(
            x[i + 2],
            a.kernel[i],
            a.strides[i],
            a.dilations[i],
            a.pads_begin[i] + a.pads_end[i],
            false,
        )?);
    }
    Ok(out)
}

/// Convolution: x (N,C,spatial), weight (M, C/group, kernel), optional bias (M) into out (N,M,out spatial).
#[allow(clippy::too_many_arguments)] // the op's operands and attributes, each needed
fn conv<T: Real>(
    x: &[T],
    x_shape: &[usize],
    weight: &[T],
    m: usize,
    bias: Option<&[T]>,
    group: usize,
    w: &Window3,
    out: &mut [T],
) {
    let (n, c) = (x_shape[0], x_shape[1]);
    let (osp, kl) = (w.output_len(), w.kernel_len());
    let cols = n * osp;
    // One GEMM per group over the whole batch: out_g [Mg, N*OSP] = W_g [Mg, Kg] @ col_g [Kg, N*OSP].
    let mut col = vec![T::zero(); c * kl * cols];
    im2col_batched(x, n, c, w, &mut col);
    let (mg, kg) = (m / group, c / group * kl);
    let mut tmp = vec![T::zero(); m * cols];
    let shape = GemmShape { m: mg, k: kg, n: cols, a: (kg, 1), b: (cols, 1), c: (cols, 1) };
    for g in 0..group {
        let a = &weight[g * mg * kg..(g + 1) * mg * kg];
        T::gemm(
            shape,
            T::one(),
            a,
            &col[g * kg * cols..(g + 1) * kg * cols],
            T::zero(),
            &mut tmp[g * mg * cols..(g + 1) * mg * cols],
        );
    }
    // [M, N*OSP] -> [N, M, OSP], adding the bias on the way.
    for ch in 0..m {
        let b0 = bias.map_or(T::zero(), |b| b[ch]);
        for b in 0..n {
            let src = &tmp[ch * cols + b * osp..ch * cols + (b + 1) * osp];
            let dst = &mut out[(b * m + ch) * osp..(b * m + ch + 1) * osp];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v + b0;
            }
        }
    }
}

/// Small convolution cases: (spatial dims, batch, in channels, out channels, size, kernel, stride,
/// dilation, pad, group).
pub(crate) type ConvCase = (usize, usize, usize, usize, usize, usize, usize, usize, usize, usize);

/// The attributes and shapes (x, w) of a case; the end padding is one less than the start's.
pub(crate) fn conv_case(c: ConvCase) -> (ConvAttrs, Vec<usize>, Vec<usize>) {
    let (nd, n, ch, m, size, k, s, d, p, group) = c;
    let attrs = ConvAttrs {
        kernel: vec![k; nd],
        strides: vec![s; nd],
        dilations: vec![d; nd],
        pads_begin: vec![p; nd],
        pads_end: vec![p.saturating_sub(1); nd],
        group,
    };
    let mut x = vec![n, ch];
    x.extend(vec![size; nd]);
    let mut w = vec![m, ch / group];
    w.extend(vec![k; nd]);
    (attrs, x, w)
}

impl OpDef for ConvAttrs {
    fn name(&self) -> &'static str {
        "Conv"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 3)?;
        conv_output_shape(self, inputs)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let w = self.window(&args.s(0)[2..], &args.out_shape[2..]);
        let bias = (args.inputs.len() > 2).then(|| args.x(2));
        conv(args.x(0), args.s(0), args.x(1), args.s(1)[0], bias, self.group, &w, out);
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (x, w, dy) = (cx.inputs[0], cx.inputs[1], cx.dy);
        let mut out = vec![None, None, None];
        if cx.need(0) {
            let input_shape = cx.shape(x);
            out[0] = Some(cx.node(ConvGradInput { attrs: self.clone(), input_shape }, &[dy, w])?);
        }
        if cx.need(1) {
            let weight_shape = cx.shape(w);
            out[1] = Some(cx.node(ConvGradWeight { attrs: self.clone(), weight_shape }, &[x, dy])?);
        }
        if cx.inputs.len() > 2 && cx.need(2) {
            let rank = cx.shape(dy).len();
            let axes: Vec<usize> = (0..rank).filter(|&i| i != 1).collect();
            out[2] = Some(cx.node(Reduce { op: ReduceOp::Sum, axes, keepdims: false }, &[dy])?);
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let s = cx.in_shape(0).to_vec();
        let out_shape = cx.out_shape().to_vec();
        let (xl, wl, ol) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let w = self.window(&s[2..], &out_shape[2..]);
        let (n, c, m) = (s[0], s[1], cx.in_shape(1)[0]);
        let (osp, kl) = (w.output_len(), w.kernel_len());
        let (mg, kg) = (m / self.group, c / self.group * kl);
        let mut out = Vec::new();
        let cols = if self.is_pointwise() {
            xl
        } else {
            let col = cx.scratch()?;
            out.push(im2col_dispatch(cx, &s, xl, col, &w));
            col
        };
        out.extend(matmul_dispatches(
            cx.target,
            MatMulCall {
                m: mg,
                n: osp,
                k: kg,
                batch_hi: n,
                batch_lo: self.group,
                a: (wl, [0, mg * kg], kg, 1),
                b: (cols, [c * kl * osp, kg * osp], osp, 1),
                c: (ol, [m * osp, mg * osp], osp),
                alpha: 1.0,
                beta: 0.0,
            },
        ));
        if cx.node().inputs.len() > 2 {
            // out[n, m, o] += bias[m]: a broadcast add in place.
            let bl = cx.in_loc(2);
            let params =
                BinaryParams::broadcast((ol.offset, &[n, m, osp]), (bl.offset, &[1, m, 1]), (ol.offset, &[n, m, osp]))
                    .ok_or_else(|| cx.too_many_dims(3))?;
            out.push(binary_dispatch(cx, BinaryOp::Add, params, [ol.region, bl.region, ol.region]));
        }
        Ok(out)
    }

    fn scratch_len(&self, inputs: &[&[usize]], output: &[usize]) -> usize {
        if self.is_pointwise() { 0 } else { self.columns_len(inputs[0], output) }
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut cases: Vec<(ConvCase, bool)> = vec![
            ((1, 2, 3, 4, 11, 3, 1, 1, 0, 1), true),
            ((1, 1, 4, 6, 9, 2, 2, 2, 2, 2), false),
            ((2, 2, 1, 8, 12, 3, 1, 1, 0, 1), true),
            ((2, 3, 6, 4, 9, 3, 2, 1, 1, 2), true),
            ((2, 1, 4, 4, 7, 3, 1, 2, 2, 4), true),
            ((2, 2, 5, 3, 6, 1, 1, 1, 0, 1), true),
            ((2, 2, 3, 5, 8, 1, 2, 1, 0, 1), false),
            ((3, 1, 2, 3, 5, 3, 1, 1, 1, 1), true),
            ((3, 2, 2, 2, 6, 2, 2, 1, 0, 2), false),
        ];
        cases.push(((2, rng.size(1, 3), 3, rng.size(1, 7), rng.size(3, 13), 3, 1, 1, 1, 1), true));
        let mut out: Vec<OpCase> = cases
            .into_iter()
            .map(|(c, bias)| {
                let (attrs, x, w) = conv_case(c);
                let m = w[0];
                let mut inputs = vec![CaseInput::uniform(x, -1.0, 1.0), CaseInput::uniform(w, -1.0, 1.0).as_param()];
                if bias {
                    inputs.push(CaseInput::uniform(vec![m], -1.0, 1.0).as_param());
                }
                OpCase::new(attrs, inputs)
            })
            .collect();
        // Gradients: (spatial dims, stride, pad, dilation, group) over a 2x4x5.. input, 2-wide kernel.
        for (nd, s, p, d, group) in [(2, 1, 0, 1, 1), (2, 2, 1, 1, 2), (1, 1, 1, 2, 1), (3, 1, 0, 1, 1)] {
            let attrs = ConvAttrs {
                kernel: vec![2; nd],
                strides: vec![s; nd],
                dilations: vec![d; nd],
                pads_begin: vec![p; nd],
                pads_end: vec![p; nd],
                group,
            };
            let mut x = vec![2, 4];
            x.extend(vec![5; nd]);
            let mut w = vec![4, 4 / group];
            w.extend(vec![2; nd]);
            out.push(OpCase::uniform(attrs, &[x, w, vec![4]], -1.0, 1.0).with_gradient());
        }
        out
    }
}
