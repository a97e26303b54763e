//! The element types the CPU executor computes in: f32 (the engine's type, and what the WGSL
//! kernels are checked against) and f64 (for finite-difference checks of the backward rules).

use crate::cpu::gemm::GemmShape;

/// A float the CPU kernels are generic over.
pub trait Real:
    num_traits::Float + Into<f64> + std::iter::Sum + Default + Send + Sync + std::fmt::Debug + 'static
{
    /// `c = alpha * a @ b + beta * c` with strides.
    fn gemm(shape: GemmShape, alpha: Self, a: &[Self], b: &[Self], beta: Self, c: &mut [Self]);
    /// From an f32 (exact for f64).
    fn of(x: f32) -> Self;
    /// From a count.
    fn count(n: usize) -> Self;
    /// The bits of an f32 stored in this type (dropout seeds travel as f32 bit patterns).
    fn seed_bits(self) -> u32;
    /// The error function (libm's).
    fn erf(self) -> Self;
}

impl Real for f32 {
    fn gemm(shape: GemmShape, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
        crate::cpu::gemm::sgemm(shape, alpha, a, b, beta, c);
    }
    fn of(x: f32) -> f32 {
        x
    }
    fn count(n: usize) -> f32 {
        n as f32
    }
    fn seed_bits(self) -> u32 {
        self.to_bits()
    }
    fn erf(self) -> f32 {
        libm::erff(self)
    }
}

impl Real for f64 {
    fn gemm(shape: GemmShape, alpha: f64, a: &[f64], b: &[f64], beta: f64, c: &mut [f64]) {
        crate::cpu::gemm::dgemm(shape, alpha, a, b, beta, c);
    }
    fn of(x: f32) -> f64 {
        x as f64
    }
    fn count(n: usize) -> f64 {
        n as f64
    }
    fn seed_bits(self) -> u32 {
        (self as f32).to_bits()
    }
    fn erf(self) -> f64 {
        libm::erf(self)
    }
}
