//! The CPU reference kernels, one function per op. They take plain slices and shapes so the WGSL
//! kernel tests can call them directly.

use crate::cpu::gemm::GemmShape;
use crate::cpu::real::Real;
use crate::op::{BinaryOp, MatMulDims, PoolKind, ReduceOp, UnaryOp};
use crate::shape::{broadcast_strides, coalesce_dims, contiguous_strides, numel};
use crate::window::Window3;

/// Visits every multi-index of `dims` in row-major order, passing the offsets given by each stride set.
pub fn for_each_index<const K: usize>(dims: &[usize], strides: [&[usize]; K], mut f: impl FnMut([usize; K])) {
    let total = numel(dims);
    if total == 0 {
        return;
    }
    let rank = dims.len();
    let mut idx = vec![0usize; rank];
    let mut off = [0usize; K];
    for _ in 0..total {
        f(off);
        for d in (0..rank).rev() {
            idx[d] += 1;
            for k in 0..K {
                off[k] += strides[k][d];
            }
            if idx[d] < dims[d] {
                break;
            }
            for k in 0..K {
                off[k] -= strides[k][d] * dims[d];
            }
            idx[d] = 0;
        }
    }
}

/// `out = f(x)` elementwise.
pub fn unary<T: Real>(op: UnaryOp, x: &[T], out: &mut [T]) {
    // The common cases get their own loops so the compiler vectorises them.
    match op {
        UnaryOp::Relu => out.iter_mut().zip(x).for_each(|(o, &v)| *o = v.max(T::zero())),
        UnaryOp::Identity => out.copy_from_slice(x),
        UnaryOp::Neg => out.iter_mut().zip(x).for_each(|(o, &v)| *o = -v),
        _ => out.iter_mut().zip(x).for_each(|(o, &v)| *o = op.apply(v)),
    }
}

/// `out = a (op) b` with numpy broadcasting to `out_shape`.
pub fn binary<T: Real>(
    op: BinaryOp,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out_shape: &[usize],
    out: &mut [T],
) {
    if a_shape == b_shape {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = op.apply(x, y);
        }
        return;
    }
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let so = contiguous_strides(out_shape);
    let (dims, st) = coalesce_dims(out_shape, &[so, sa, sb]);
    for_each_index(&dims, [&st[0], &st[1], &st[2]], |[o, i, j]| out[o] = op.apply(a[i], b[j]));
}

/// Batched `out = alpha * op(A) @ op(B)`.
pub fn matmul<T: Real>(d: &MatMulDims, alpha: f32, a: &[T], b: &[T], out: &mut [T]) {
    let g = GemmShape { m: d.m, k: d.k, n: d.n, a: (d.a_rs, d.a_cs), b: (d.b_rs, d.b_cs), c: (d.n, 1) };
    for i in 0..d.batch_count() {
        let c = &mut out[i * d.m * d.n..(i + 1) * d.m * d.n];
        T::gemm(g, T::of(alpha), &a[i * d.a_batch_stride..], &b[i * d.b_batch_stride..], T::zero(), c);
    }
}

/// Softmax or log-softmax along `axis` of `shape`.
pub fn softmax<T: Real>(x: &[T], shape: &[usize], axis: usize, log: bool, out: &mut [T]) {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            let at = |t: usize| base + t * inner;
            let max = (0..len).map(|t| x[at(t)]).fold(T::neg_infinity(), T::max);
            let sum: T = (0..len).map(|t| (x[at(t)] - max).exp()).sum();
            for t in 0..len {
                out[at(t)] = if log { x[at(t)] - max - sum.ln() } else { (x[at(t)] - max).exp() / sum };
            }
        }
    }
}

/// Convolution: x (N,C,spatial), weight (M, C/group, kernel), optional bias (M) into out (N,M,out spatial).
#[allow(clippy::too_many_arguments)] // the op's operands and attributes, each needed
pub fn conv<T: Real>(
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

/// Unfolds N,C,spatial input into columns for the whole batch: `col[c*K + k][b*OSP + o]` is the input
/// of sample `b` under kernel offset `k` of output position `o` (zero in the padding).
pub fn im2col_batched<T: Real>(x: &[T], n: usize, c: usize, w: &Window3, col: &mut [T]) {
    let (isp, osp, kl) = (w.input_len(), w.output_len(), w.kernel_len());
    let cols = n * osp;
    let plain = w.is_plain_2d();
    let ([_, _, iw], [_, oh, ow], [_, _, _], [_, sh, sw]) = (w.input, w.output, w.kernel, w.stride);
    for ch in 0..c {
        for k in 0..kl {
            let kk = Window3::unflatten(w.kernel, k);
            let row = &mut col[(ch * kl + k) * cols..(ch * kl + k + 1) * cols];
            for b in 0..n {
                let src = &x[(b * c + ch) * isp..(b * c + ch + 1) * isp];
                let dst = &mut row[b * osp..(b + 1) * osp];
                if plain {
                    // Rows of the output read rows of the input: contiguous when the stride is 1.
                    for a in 0..oh {
                        let start = (a * sh + kk[1]) * iw + kk[2];
                        let d = &mut dst[a * ow..(a + 1) * ow];
                        if sw == 1 {
                            d.copy_from_slice(&src[start..start + ow]);
                        } else {
                            for (j, v) in d.iter_mut().enumerate() {
                                *v = src[start + j * sw];
                            }
                        }
                    }
                } else {
                    w.taps(kk, |o, s| dst[o] = s.map_or(T::zero(), |s| src[s]));
                }
            }
        }
    }
}

/// `[N, M, S]` to `[M, N*S]` (the layout the batched convolution GEMMs read a gradient in).
pub fn channels_first_to_rows<T: Real>(x: &[T], n: usize, m: usize, s: usize, out: &mut [T]) {
    for b in 0..n {
        for ch in 0..m {
            out[ch * n * s + b * s..ch * n * s + (b + 1) * s]
                .copy_from_slice(&x[(b * m + ch) * s..(b * m + ch + 1) * s]);
        }
    }
}

/// Max or average pooling of N,C,spatial input.
pub fn pool<T: Real>(kind: PoolKind, x: &[T], n: usize, c: usize, w: &Window3, out: &mut [T]) {
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

/// Inference batch normalisation over axis 1.
#[allow(clippy::too_many_arguments)] // the op's five operands and epsilon
pub fn batch_norm<T: Real>(
    x: &[T],
    shape: &[usize],
    scale: &[T],
    bias: &[T],
    mean: &[T],
    var: &[T],
    eps: f32,
    out: &mut [T],
) {
    let c = shape[1];
    let inner: usize = shape[2..].iter().product();
    for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        let ch = (i / inner) % c;
        *o = (v - mean[ch]) / (var[ch] + T::of(eps)).sqrt() * scale[ch] + bias[ch];
    }
}

/// Copies `x` (contiguous, shape `dims`) into `out` read with `src_strides` and written with `dst_strides`.
pub fn strided_copy<T: Real>(x: &[T], dims: &[usize], src_strides: &[usize], out: &mut [T], dst_strides: &[usize]) {
    for_each_index(dims, [src_strides, dst_strides], |[s, d]| out[d] = x[s]);
}

/// Transpose: output dim i is input dim `perm[i]`.
pub fn transpose<T: Real>(x: &[T], shape: &[usize], perm: &[usize], out: &mut [T]) {
    let src = contiguous_strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let permuted: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
    strided_copy(x, &out_shape, &permuted, out, &contiguous_strides(&out_shape));
}

/// Sum or mean over `axes`.
pub fn reduce<T: Real>(op: ReduceOp, x: &[T], shape: &[usize], axes: &[usize], out: &mut [T]) {
    let kept_axes: Vec<usize> = (0..shape.len()).filter(|i| !axes.contains(i)).collect();
    if kept_axes.len() == 1 {
        // The common case (bias gradients, per-channel statistics): one kept axis, summed in
        // contiguous runs.
        let a = kept_axes[0];
        let (outer, dim, inner) =
            (shape[..a].iter().product::<usize>(), shape[a], shape[a + 1..].iter().product::<usize>());
        out.iter_mut().for_each(|v| *v = T::zero());
        for o in 0..outer {
            for (ch, acc) in out.iter_mut().enumerate().take(dim) {
                let base = (o * dim + ch) * inner;
                *acc = *acc + x[base..base + inner].iter().copied().sum::<T>();
            }
        }
        if op == ReduceOp::Mean {
            let count = T::count((outer * inner).max(1));
            out.iter_mut().for_each(|v| *v = *v / count);
        }
        return;
    }
    let src = contiguous_strides(shape);
    let kept: Vec<usize> = (0..shape.len()).filter(|i| !axes.contains(i)).collect();
    let kept_dims: Vec<usize> = kept.iter().map(|&i| shape[i]).collect();
    let kept_strides: Vec<usize> = kept.iter().map(|&i| src[i]).collect();
    let red_dims: Vec<usize> = axes.iter().map(|&i| shape[i]).collect();
    let red_strides: Vec<usize> = axes.iter().map(|&i| src[i]).collect();
    let count = T::count(numel(&red_dims).max(1));
    let mut o = 0;
    for_each_index(&kept_dims, [&kept_strides], |[base]| {
        let mut acc = T::zero();
        for_each_index(&red_dims, [&red_strides], |[r]| acc = acc + x[base + r]);
        out[o] = if op == ReduceOp::Mean { acc / count } else { acc };
        o += 1;
    });
}
