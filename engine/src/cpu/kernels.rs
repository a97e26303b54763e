//! Index mechanics the CPU reference kernels share: visiting multi-indices with several stride
//! sets, and the strided copy.

use crate::cpu::real::Real;
use crate::shape::numel;

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

/// Copies `x` (contiguous, shape `dims`) into `out` read with `src_strides` and written with `dst_strides`.
pub fn strided_copy<T: Real>(x: &[T], dims: &[usize], src_strides: &[usize], out: &mut [T], dst_strides: &[usize]) {
    for_each_index(dims, [src_strides, dst_strides], |[s, d]| out[d] = x[s]);
}
