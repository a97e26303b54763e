//! N-d pooling, layout N,C,spatial: max (padding never wins) or average (`count_include_pad`
//! counts padded positions in the divisor), and its gradient (max routes dy to the first maximum
//! of each window; average spreads it).

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::conv::WINDOW;
use crate::ops::{CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};
use crate::window::Window3;

const POOL: &str = include_str!("../../../shaders/pool.wgsl");
const POOL_GRAD: &str = include_str!("../../../shaders/pool_grad.wgsl");

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the window (padding never wins).
    Max,
    /// Mean over the window; `count_include_pad` counts padded positions in the divisor.
    Average { count_include_pad: bool },
}

/// Pooling attributes, normalised like [`ConvAttrs`].
#[derive(Clone, Debug, PartialEq)]
pub struct PoolAttrs {
    /// Max or average.
    pub kind: PoolKind,
    /// Window size per spatial dimension.
    pub kernel: Vec<usize>,
    /// Stride per spatial dimension.
    pub strides: Vec<usize>,
    /// Dilation per spatial dimension.
    pub dilations: Vec<usize>,
    /// Padding before each spatial dimension.
    pub pads_begin: Vec<usize>,
    /// Padding after each spatial dimension.
    pub pads_end: Vec<usize>,
    /// Output size rounds up instead of down (ONNX `ceil_mode`).
    pub ceil_mode: bool,
}

/// Gradient of pooling. Inputs: x, dy.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolGrad(pub PoolAttrs);

/// Output length of a sliding window along one dimension.
pub fn window_output(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: usize,
    ceil_mode: bool,
) -> std::result::Result<usize, String> {
    let span = dilation * (kernel.max(1) - 1) + 1;
    let padded = input + pads;
    if padded < span || stride == 0 {
        return Err(format!("window {kernel} (dilation {dilation}) does not fit input {input} with padding {pads}"));
    }
    let steps = padded - span;
    Ok(if ceil_mode { steps.div_ceil(stride) + 1 } else { steps / stride + 1 })
}

/// Max or average pooling of N,C,spatial input.
fn pool<T: Real>(kind: PoolKind, x: &[T], n: usize, c: usize, w: &Window3, out: &mut [T]) {
    let (isp, osp, kl) = (w.input_len(), w.output_len(), w.kernel_len());
    if w.is_plain_2d() {
        let ([_, ih, iw], [_, oh, ow], [_, kh, kw], [_, sh, sw]) = (w.input, w.output, w.kernel, w.stride);
        let _ = ih;
        let area = T::count(kh * kw);
        for nc in 0..n * c {
            let src = &x[nc * isp..(nc + 1) * isp];
            for a in 0..oh {
                for b in 0..ow {
                    let mut acc = if kind == PoolKind::Max { T::neg_infinity() } else { T::zero() };
                    for p in 0..kh {
                        let row = &src[(a * sh + p) * iw + b * sw..(a * sh + p) * iw + b * sw + kw];
                        for &v in row {
                            acc = if kind == PoolKind::Max { acc.max(v) } else { acc + v };
                        }
                    }
                    out[nc * osp + a * ow + b] = if kind == PoolKind::Max { acc } else { acc / area };
                }
            }
        }
        return;
    }
    let mut count = vec![0usize; osp];
    let mut padded = vec![0usize; osp];
    for nc in 0..n * c {
        let src = &x[nc * isp..(nc + 1) * isp];
        let dst = &mut out[nc * osp..(nc + 1) * osp];
        dst.fill(if kind == PoolKind::Max { T::neg_infinity() } else { T::zero() });
        count.fill(0);
        padded.fill(0);
        for k in 0..kl {
            let kk = Window3::unflatten(w.kernel, k);
            w.taps(kk, |o, s| match s {
                Some(s) => {
                    dst[o] = if kind == PoolKind::Max { dst[o].max(src[s]) } else { dst[o] + src[s] };
                    count[o] += 1;
                }
                None => padded[o] += w.in_padded(Window3::unflatten(w.output, o), kk) as usize,
            });
        }
        match kind {
            PoolKind::Max => {}
            PoolKind::Average { count_include_pad } => {
                for o in 0..osp {
                    let d = if count_include_pad { count[o] + padded[o] } else { count[o] };
                    dst[o] = dst[o] / T::count(d.max(1));
                }
            }
        }
    }
}

/// Gradient of pooling: max routes dy to the first maximum of each window; average spreads it.
fn pool_grad<T: Real>(kind: PoolKind, x: &[T], dy: &[T], n: usize, c: usize, w: &Window3, dx: &mut [T]) {
    let (isp, osp, kl) = (w.input_len(), w.output_len(), w.kernel_len());
    dx.iter_mut().for_each(|v| *v = T::zero());
    if w.is_plain_2d() {
        let ([_, _, iw], [_, oh, ow], [_, kh, kw], [_, sh, sw]) = (w.input, w.output, w.kernel, w.stride);
        let area = T::count(kh * kw);
        for nc in 0..n * c {
            let src = &x[nc * isp..(nc + 1) * isp];
            let dst = &mut dx[nc * isp..(nc + 1) * isp];
            for a in 0..oh {
                for b in 0..ow {
                    let g = dy[nc * osp + a * ow + b];
                    if kind == PoolKind::Max {
                        let mut best = (a * sh) * iw + b * sw;
                        for p in 0..kh {
                            for q in 0..kw {
                                let i = (a * sh + p) * iw + b * sw + q;
                                if src[i] > src[best] {
                                    best = i;
                                }
                            }
                        }
                        dst[best] = dst[best] + g;
                    } else {
                        for p in 0..kh {
                            for q in 0..kw {
                                let i = (a * sh + p) * iw + b * sw + q;
                                dst[i] = dst[i] + g / area;
                            }
                        }
                    }
                }
            }
        }
        return;
    }
    let mut best: Vec<Option<usize>> = vec![None; osp];
    let mut count = vec![0usize; osp];
    for nc in 0..n * c {
        let src = &x[nc * isp..(nc + 1) * isp];
        let g = &dy[nc * osp..(nc + 1) * osp];
        let dst = &mut dx[nc * isp..(nc + 1) * isp];
        best.fill(None);
        count.fill(0);
        for k in 0..kl {
            let kk = Window3::unflatten(w.kernel, k);
            w.taps(kk, |o, s| match s {
                Some(s) => {
                    count[o] += 1;
                    if best[o].is_none_or(|b| src[s] > src[b]) {
                        best[o] = Some(s);
                    }
                }
                None => {
                    if matches!(kind, PoolKind::Average { count_include_pad: true })
                        && w.in_padded(Window3::unflatten(w.output, o), kk)
                    {
                        count[o] += 1;
                    }
                }
            });
        }
        match kind {
            PoolKind::Max => {
                for o in 0..osp {
                    if let Some(b) = best[o] {
                        dst[b] = dst[b] + g[o];
                    }
                }
            }
            PoolKind::Average { .. } => {
                for k in 0..kl {
                    w.taps(Window3::unflatten(w.kernel, k), |o, s| {
                        if let Some(s) = s {
                            dst[s] = dst[s] + g[o] / T::count(count[o].max(1));
                        }
                    });
                }
            }
        }
    }
}

impl PoolAttrs {
    /// The window geometry for an input of spatial dims `input` and an output of `output`.
    pub fn window(&self, input: &[usize], output: &[usize]) -> Window3 {
        Window3::new(input, output, &self.kernel, &self.strides, &self.dilations, &self.pads_begin, &self.pads_end)
    }

    /// The kind's code in the kernels.
    fn kind_code(&self) -> u32 {
        match self.kind {
            PoolKind::Max => 0,
            PoolKind::Average { count_include_pad: false } => 1,
            PoolKind::Average { count_include_pad: true } => 2,
        }
    }
}

crate::uniforms! {
    /// shaders/pool.wgsl: n = N*C*OSP.
    pub struct PoolParams { n: u32, x: u32, out: u32, kind: u32, window: [u32; 21] }
}

crate::uniforms! {
    /// shaders/pool_grad.wgsl: n = N*C*ISP.
    pub struct PoolGradParams { n: u32, x: u32, dy: u32, out: u32, kind: u32, window: [u32; 21] }
}

fn window_words(w: &Window3) -> [u32; 21] {
    let mut out = [0u32; 21];
    out.copy_from_slice(&w.to_u32s());
    out
}

/// The pooling cases: every kind in 1-3 spatial dims with padding and ceil mode.
pub(crate) fn all_pools(nd: usize) -> Vec<PoolAttrs> {
    let mut out = Vec::new();
    for kind in
        [PoolKind::Max, PoolKind::Average { count_include_pad: false }, PoolKind::Average { count_include_pad: true }]
    {
        for (k, s, p, ceil) in [(2, 2, 0, false), (3, 2, 1, false), (3, 2, 1, true), (2, 1, 0, true), (3, 1, 1, false)]
        {
            out.push(PoolAttrs {
                kind,
                kernel: vec![k; nd],
                strides: vec![s; nd],
                dilations: vec![1; nd],
                pads_begin: vec![p; nd],
                pads_end: vec![p; nd],
                ceil_mode: ceil,
            });
        }
    }
    out
}

impl OpDef for PoolAttrs {
    fn name(&self) -> &'static str {
        "Pool"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        let x = inputs[0];
        let nd = self.kernel.len();
        if x.len() != nd + 2 {
            return Err(format!("input rank {} does not fit a {nd}-d window", x.len()));
        }
        let mut out = vec![x[0], x[1]];
        for i in 0..nd {
            let mut o = window_output(
                x[i + 2],
                self.kernel[i],
                self.strides[i],
                self.dilations[i],
                self.pads_begin[i] + self.pads_end[i],
                self.ceil_mode,
            )?;
            // As ONNX and PyTorch do, ceil_mode drops a last window that starts in the end padding.
            if self.ceil_mode && o > 1 && (o - 1) * self.strides[i] >= x[i + 2] + self.pads_begin[i] {
                o -= 1;
            }
            out.push(o);
        }
        Ok(out)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let s = args.s(0);
        let w = self.window(&s[2..], &args.out_shape[2..]);
        pool(self.kind, args.x(0), s[0], s[1], &w, out);
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (x, dy) = (cx.inputs[0], cx.dy);
        Ok(vec![Some(cx.node(PoolGrad(self.clone()), &[x, dy])?)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let w = self.window(&cx.in_shape(0)[2..], &cx.out_shape()[2..]);
        let (x, o, n) = (cx.in_loc(0), cx.out_loc(), cx.out_len());
        let params = PoolParams {
            n: n as u32,
            x: x.offset as u32,
            out: o.offset as u32,
            kind: self.kind_code(),
            window: window_words(&w),
        };
        Ok(vec![Dispatch::new(POOL, &[WINDOW], params, &[("X", x.region), ("O", o.region)], &[], cx.grid(n))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for nd in 1..=3 {
            for attrs in all_pools(nd) {
                let mut x = vec![2, 3];
                x.extend(vec![if nd == 2 { rng.size(5, 11) } else { 7 }; nd]);
                out.push(OpCase::uniform(attrs, &[x], -1.0, 1.0));
            }
        }
        for attrs in all_pools(2).into_iter().filter(|a| a.kernel[0] == 2 && !a.ceil_mode) {
            let attrs = PoolAttrs { strides: vec![2, 1], pads_begin: vec![1, 0], pads_end: vec![1, 0], ..attrs };
            out.push(OpCase::uniform(attrs, &[vec![2, 3, 5, 4]], -1.0, 1.0).with_gradient());
        }
        out
    }
}

impl OpDef for PoolGrad {
    fn name(&self) -> &'static str {
        "PoolGrad"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        // dy must be the pooling's output for this input.
        let y = self.0.output_shape(&inputs[..1])?;
        if y != inputs[1] {
            return Err(format!("dy {:?} is not the output {y:?} of the pooling", inputs[1]));
        }
        Ok(inputs[0].to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let s = args.s(0);
        let w = self.0.window(&s[2..], &args.s(1)[2..]);
        pool_grad(self.0.kind, args.x(0), args.x(1), s[0], s[1], &w, out);
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "PoolGrad"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let w = self.0.window(&cx.in_shape(0)[2..], &cx.in_shape(1)[2..]);
        let (x, dy, o, n) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc(), cx.out_len());
        let params = PoolGradParams {
            n: n as u32,
            x: x.offset as u32,
            dy: dy.offset as u32,
            out: o.offset as u32,
            kind: self.0.kind_code(),
            window: window_words(&w),
        };
        Ok(vec![Dispatch::new(
            POOL_GRAD,
            &[WINDOW],
            params,
            &[("X", x.region), ("DY", dy.region), ("O", o.region)],
            &[],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        for attrs in all_pools(2).into_iter().filter(|a| !a.ceil_mode) {
            let xs = vec![2, 3, 7, rng.size(5, 9)];
            let Ok(dy) = attrs.output_shape(&[&xs]) else { continue };
            out.push(OpCase::uniform(PoolGrad(attrs), &[xs, dy], -1.0, 1.0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_mode_drops_a_last_window_that_starts_in_the_end_padding() {
        let pool = |kernel, stride, pad, ceil_mode| PoolAttrs {
            kind: PoolKind::Max,
            kernel: vec![kernel],
            strides: vec![stride],
            dilations: vec![1],
            pads_begin: vec![pad],
            pads_end: vec![pad],
            ceil_mode,
        };
        // ONNX's test_maxpool_2d_ceil_output_size_reduce_by_one and
        // test_averagepool_2d_ceil_last_window_starts_on_pad, on one spatial dim.
        assert_eq!(pool(1, 2, 0, true).output_shape(&[&[1, 1, 2]]), Ok(vec![1, 1, 1]));
        assert_eq!(pool(3, 3, 1, true).output_shape(&[&[1, 3, 2]]), Ok(vec![1, 3, 1]));
        // A last window that starts inside the input (or the begin padding) stays.
        assert_eq!(pool(2, 2, 0, true).output_shape(&[&[1, 1, 5]]), Ok(vec![1, 1, 3]));
        assert_eq!(pool(3, 2, 1, true).output_shape(&[&[1, 1, 6]]), Ok(vec![1, 1, 4]));
        assert_eq!(pool(3, 2, 1, false).output_shape(&[&[1, 1, 6]]), Ok(vec![1, 1, 3]));
    }

    #[test]
    fn window_sizes() {
        assert_eq!(window_output(28, 3, 1, 1, 0, false), Ok(26));
        assert_eq!(window_output(26, 2, 2, 1, 0, false), Ok(13));
        assert_eq!(window_output(5, 2, 2, 1, 0, true), Ok(3));
        assert!(window_output(2, 3, 1, 1, 0, false).is_err());
    }
}
