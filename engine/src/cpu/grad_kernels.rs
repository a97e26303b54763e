//! CPU reference kernels of the backward ops.

use crate::cpu::gemm::GemmShape;
use crate::cpu::kernels::{channels_first_to_rows, for_each_index, im2col_batched};
use crate::cpu::real::Real;
use crate::op::{PoolKind, UnaryOp};
use crate::shape::{broadcast_strides, contiguous_strides};
use crate::window::Window3;

/// dx = dy * f'(x).
pub fn unary_grad<T: Real>(op: UnaryOp, x: &[T], dy: &[T], dx: &mut [T]) {
    match op {
        UnaryOp::Relu => {
            dx.iter_mut().zip(x).zip(dy).for_each(|((o, &v), &g)| *o = if v > T::zero() { g } else { T::zero() })
        }
        _ => dx.iter_mut().zip(x).zip(dy).for_each(|((o, &v), &g)| *o = g * op.derivative(v)),
    }
}

/// Softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy), along `axis`.
pub fn softmax_grad<T: Real>(y: &[T], dy: &[T], shape: &[usize], axis: usize, log: bool, dx: &mut [T]) {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    for o in 0..outer {
        for i in 0..inner {
            let at = |t: usize| o * len * inner + i + t * inner;
            if log {
                let sum: T = (0..len).map(|t| dy[at(t)]).sum();
                for t in 0..len {
                    dx[at(t)] = dy[at(t)] - y[at(t)].exp() * sum;
                }
            } else {
                let dot: T = (0..len).map(|t| dy[at(t)] * y[at(t)]).sum();
                for t in 0..len {
                    dx[at(t)] = y[at(t)] * (dy[at(t)] - dot);
                }
            }
        }
    }
}

/// Numpy broadcast of x (shape `x_shape`) to `out_shape`.
pub fn broadcast<T: Real>(x: &[T], x_shape: &[usize], out_shape: &[usize], out: &mut [T]) {
    let src = broadcast_strides(x_shape, out_shape);
    let dst = contiguous_strides(out_shape);
    for_each_index(out_shape, [&src, &dst], |[s, d]| out[d] = x[s]);
}

/// `len` entries along `axis` from `start`.
pub fn slice<T: Real>(x: &[T], shape: &[usize], axis: usize, start: usize, len: usize, out: &mut [T]) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    for o in 0..outer {
        let src = (o * shape[axis] + start) * inner;
        out[o * len * inner..(o + 1) * len * inner].copy_from_slice(&x[src..src + len * inner]);
    }
}

/// Adds batched columns (`[C*K, N*OSP]`, see [`crate::cpu::kernels::im2col_batched`]) back into an N,C,spatial image.
pub fn col2im_batched<T: Real>(col: &[T], n: usize, c: usize, w: &Window3, dx: &mut [T]) {
    let (isp, osp, kl) = (w.input_len(), w.output_len(), w.kernel_len());
    let cols = n * osp;
    let plain = w.is_plain_2d();
    let ([_, _, iw], [_, oh, ow], [_, sh, sw]) = (w.input, w.output, w.stride);
    dx.iter_mut().for_each(|v| *v = T::zero());
    for ch in 0..c {
        for k in 0..kl {
            let kk = Window3::unflatten(w.kernel, k);
            let row = &col[(ch * kl + k) * cols..(ch * kl + k + 1) * cols];
            for b in 0..n {
                let dst = &mut dx[(b * c + ch) * isp..(b * c + ch + 1) * isp];
                let src = &row[b * osp..(b + 1) * osp];
                if plain {
                    for a in 0..oh {
                        let start = (a * sh + kk[1]) * iw + kk[2];
                        for (j, &v) in src[a * ow..(a + 1) * ow].iter().enumerate() {
                            dst[start + j * sw] = dst[start + j * sw] + v;
                        }
                    }
                } else {
                    w.taps(kk, |o, s| {
                        if let Some(s) = s {
                            dst[s] = dst[s] + src[o];
                        }
                    });
                }
            }
        }
    }
}

/// Gradient of a convolution with respect to its input: col_g = W_g^T dy_g over the whole batch,
/// then col2im.
#[allow(clippy::too_many_arguments)] // the op's operands and attributes
pub fn conv_grad_input<T: Real>(
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
pub fn conv_grad_weight<T: Real>(
    x: &[T],
    x_shape: &[usize],
    dy: &[T],
    m: usize,
    group: usize,
    w: &Window3,
    dw: &mut [T],
) {
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

/// Gradient of pooling: max routes dy to the first maximum of each window; average spreads it.
pub fn pool_grad<T: Real>(kind: PoolKind, x: &[T], dy: &[T], n: usize, c: usize, w: &Window3, dx: &mut [T]) {
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
