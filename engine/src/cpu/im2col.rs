//! The column layout the convolutions compute in: im2col unfolds an N,C,spatial input into
//! `[C*K, N*OSP]` columns for one GEMM per group over the whole batch; col2im adds columns back.

use crate::cpu::real::Real;
use crate::window::Window3;

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

/// Adds batched columns (`[C*K, N*OSP]`, see [`im2col_batched`]) back into an N,C,spatial image.
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
