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
    /// The hyperbolic tangent as the kernels compute it: for f32 Cephes' tanhf (a polynomial
    /// below 0.625, `1 - 2 / (exp(2|x|) + 1)` above; within 2 ulp), which avoids glibc's tanhf and
    /// its expm1f (a third of an LSTM's training step); for f64 libm's.
    fn tanh_kernel(self) -> Self;
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
    fn tanh_kernel(self) -> f32 {
        let a = self.abs();
        if a >= 0.625 {
            if a > 9.0 {
                // tanh(9) rounds to 1 in f32.
                return 1.0f32.copysign(self);
            }
            let e = (2.0 * a).exp();
            (1.0 - 2.0 / (e + 1.0)).copysign(self)
        } else if self.is_nan() || a == 0.0 {
            self
        } else {
            let z = self * self;
            let p =
                (((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z - 3.333_328e-1;
            p * z * self + self
        }
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
    fn tanh_kernel(self) -> f64 {
        self.tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_tanh_is_within_two_ulp_of_the_f64_tanh() {
        let mut worst = 0.0f64;
        for k in -200_000..=200_000 {
            let x = k as f32 * 1e-4;
            let got = x.tanh_kernel() as f64;
            let want = (x as f64).tanh();
            let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
            let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
            worst = worst.max((got - want).abs() / ulp);
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(f32::INFINITY.tanh_kernel(), 1.0);
        assert_eq!(f32::NEG_INFINITY.tanh_kernel(), -1.0);
        assert!(f32::NAN.tanh_kernel().is_nan());
        assert_eq!((-0.0f32).tanh_kernel().to_bits(), (-0.0f32).to_bits());
    }
}
