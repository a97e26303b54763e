//! Strided single-precision matrix product on the CPU through `matrixmultiply`.

/// Describes `C = alpha * A @ B + beta * C` with arbitrary element strides.
#[derive(Clone, Copy, Debug)]
pub struct GemmShape {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Row and column strides of A.
    pub a: (usize, usize),
    /// Row and column strides of B.
    pub b: (usize, usize),
    /// Row and column strides of C.
    pub c: (usize, usize),
}

fn reach(rows: usize, cols: usize, (rs, cs): (usize, usize)) -> usize {
    if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 }
}

macro_rules! strided_gemm {
    ($(#[$doc:meta])* $name:ident, $t:ty, $mm:path) => {
        $(#[$doc])*
        pub fn $name(s: GemmShape, alpha: $t, a: &[$t], b: &[$t], beta: $t, c: &mut [$t]) {
            assert!(a.len() >= reach(s.m, s.k, s.a), "gemm: A too short");
            assert!(b.len() >= reach(s.k, s.n, s.b), "gemm: B too short");
            assert!(c.len() >= reach(s.m, s.n, s.c), "gemm: C too short");
            if s.m == 0 || s.n == 0 {
                return;
            }
            // SAFETY: matrixmultiply reads A at (i*rs + p*cs) for i < m, p < k, B likewise for
            // p < k, j < n, and writes C at i < m, j < n. The asserts above prove every such index
            // lies inside the slices, strides are non-negative, and `c` is a unique borrow, so C
            // does not alias A or B.
            unsafe {
                $mm(
                    s.m,
                    s.k,
                    s.n,
                    alpha,
                    a.as_ptr(),
                    s.a.0 as isize,
                    s.a.1 as isize,
                    b.as_ptr(),
                    s.b.0 as isize,
                    s.b.1 as isize,
                    beta,
                    c.as_mut_ptr(),
                    s.c.0 as isize,
                    s.c.1 as isize,
                );
            }
        }
    };
}

strided_gemm!(
    /// Computes `c = alpha * a @ b + beta * c` in single precision. Panics if a slice is shorter than
    /// its strides reach (a bug in the caller, never a user error: shapes are checked when the graph
    /// is built).
    sgemm,
    f32,
    matrixmultiply::sgemm
);
strided_gemm!(
    /// Computes `c = alpha * a @ b + beta * c` in double precision (the f64 reference path).
    dgemm,
    f64,
    matrixmultiply::dgemm
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposed_strides_give_the_transposed_product() {
        // A = [[1,2],[3,4]] read transposed; B = identity.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [1.0, 0.0, 0.0, 1.0];
        let mut c = [0.0; 4];
        let s = GemmShape { m: 2, k: 2, n: 2, a: (1, 2), b: (2, 1), c: (2, 1) };
        sgemm(s, 1.0, &a, &b, 0.0, &mut c);
        assert_eq!(c, [1.0, 3.0, 2.0, 4.0]);
    }
}
