//! CPU reference kernels of the backward ops.

use crate::cpu::gemm::GemmShape;
use crate::cpu::kernels::{for_each_index, im2col};
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

/// Adds columns back into an N,C,spatial image: the adjoint of [`im2col`].
pub fn col2im<T: Real>(col: &[T], n: usize, c: usize, w: &Window3, dx: &mut [T]) {
    let (isp, osp, kl) = (w.input_len(), w.output_len(), w.kernel_len());
    dx.iter_mut().for_each(|v| *v = T::zero());
    for nc in 0..n * c {
        let dst = &mut dx[nc * isp..(nc + 1) * isp];
        for k in 0..kl {
            let row = &col[(nc * kl + k) * osp..(nc * kl + k + 1) * osp];
            w.taps(Window3::unflatten(w.kernel, k), |o, s| {
                if let Some(s) = s {
                    dst[s] = dst[s] + row[o];
                }
            });
        }
    }
}

/// Gradient of a convolution with respect to its input: dx = col2im(W^T dy) per group.
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
    let (cg, mg) = (c / group, m / group);
    let kg = cg * kl;
    let mut col = vec![T::zero(); n * c * kl * osp];
    // col[n, g] (kg x osp) = W[g]^T (kg x mg) @ dy[n, g] (mg x osp)
    let shape = GemmShape { m: kg, k: mg, n: osp, a: (1, kg), b: (osp, 1), c: (osp, 1) };
    for b in 0..n {
        for g in 0..group {
            let a = &weight[g * mg * kg..(g + 1) * mg * kg];
            let d = &dy[(b * m + g * mg) * osp..(b * m + (g + 1) * mg) * osp];
            let dst = &mut col[(b * c + g * cg) * kl * osp..(b * c + (g + 1) * cg) * kl * osp];
            T::gemm(shape, T::one(), a, d, T::zero(), dst);
        }
    }
    col2im(&col, n, c, w, dx);
}

/// Gradient of a convolution with respect to its weight: dW[g] = sum_n dy[n, g] @ col[n, g]^T.
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
    let (cg, mg) = (c / group, m / group);
    let kg = cg * kl;
    let mut col = vec![T::zero(); n * c * kl * osp];
    im2col(x, n, c, w, &mut col);
    let shape = GemmShape { m: mg, k: osp, n: kg, a: (osp, 1), b: (1, osp), c: (kg, 1) };
    dw.iter_mut().for_each(|v| *v = T::zero());
    for b in 0..n {
        for g in 0..group {
            let d = &dy[(b * m + g * mg) * osp..(b * m + (g + 1) * mg) * osp];
            let cols = &col[(b * c + g * cg) * kl * osp..(b * c + (g + 1) * cg) * kl * osp];
            T::gemm(shape, T::one(), d, cols, T::one(), &mut dw[g * mg * kg..(g + 1) * mg * kg]);
        }
    }
}

/// Gradient of pooling: max routes dy to the first maximum of each window; average spreads it.
pub fn pool_grad<T: Real>(kind: PoolKind, x: &[T], dy: &[T], n: usize, c: usize, w: &Window3, dx: &mut [T]) {
    let (isp, osp, kl) = (w.input_len(), w.output_len(), w.kernel_len());
    dx.iter_mut().for_each(|v| *v = T::zero());
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
