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
    let Some(last) = dims.len().checked_sub(1) else {
        f([0; K]);
        return;
    };
    // The innermost dim runs as a tight loop; the carry over the outer dims happens once per row.
    let (inner, step) = (dims[last], std::array::from_fn::<usize, K, _>(|k| strides[k][last]));
    let mut idx = vec![0usize; last];
    let mut off = [0usize; K];
    for _ in 0..total / inner {
        let mut o = off;
        for _ in 0..inner {
            f(o);
            for k in 0..K {
                o[k] += step[k];
            }
        }
        for d in (0..last).rev() {
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
