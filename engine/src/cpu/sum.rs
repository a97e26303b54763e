//! Pairwise summation: the error of an f32 sum of n terms grows with log n instead of n.
//!
//! BatchNormalization's statistics and gradients sum every element of a channel (batch × spatial,
//! tens of thousands of terms); a running f32 sum over them loses digits that a training step then
//! amplifies. numpy sums the same way.

use crate::cpu::real::Real;

/// Terms summed directly, in [`LANES`] interleaved accumulators, below which no split happens.
const LEAF: usize = 128;
/// Independent accumulators of a leaf (they also let the compiler vectorise it).
const LANES: usize = 8;

/// The sum of `xs`, by halves down to leaves of at most [`LEAF`] terms.
pub fn pairwise_sum<T: Real>(xs: &[T]) -> T {
    if xs.len() <= LEAF {
        let mut lanes = [T::zero(); LANES];
        let mut chunks = xs.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (acc, &v) in lanes.iter_mut().zip(chunk) {
                *acc = *acc + v;
            }
        }
        let rest = chunks.remainder().iter().fold(T::zero(), |acc, &v| acc + v);
        let [a, b, c, d, e, f, g, h] = lanes;
        return (((a + e) + (b + f)) + ((c + g) + (d + h))) + rest;
    }
    let (left, right) = xs.split_at(xs.len() / 2);
    pairwise_sum(left) + pairwise_sum(right)
}

/// A sum fed one term at a time (strided reductions), kept as pairwise sums of blocks of
/// [`LEAF`] terms.
pub struct BlockedSum<T> {
    block: Vec<T>,
    sums: Vec<T>,
}

impl<T: Real> BlockedSum<T> {
    /// An empty sum.
    pub fn new() -> Self {
        Self { block: Vec::with_capacity(LEAF), sums: Vec::new() }
    }

    /// Adds one term.
    pub fn push(&mut self, v: T) {
        self.block.push(v);
        if self.block.len() == LEAF {
            self.sums.push(pairwise_sum(&self.block));
            self.block.clear();
        }
    }

    /// The sum of every term pushed since the last call; empties the sum (its buffers are kept,
    /// so one `BlockedSum` serves every output of a reduction without allocating).
    pub fn take_total(&mut self) -> T {
        if !self.block.is_empty() {
            self.sums.push(pairwise_sum(&self.block));
            self.block.clear();
        }
        let total = pairwise_sum(&self.sums);
        self.sums.clear();
        total
    }
}

impl<T: Real> Default for BlockedSum<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact sum of f32 terms, in f64 (exact for these magnitudes and counts).
    fn exact(xs: &[f32]) -> f64 {
        xs.iter().map(|&v| v as f64).sum()
    }

    #[test]
    fn sums_equal_the_f64_sum_within_a_few_ulps_where_a_running_sum_drifts() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for n in [0usize, 1, 7, 8, 9, 127, 128, 129, 1000, 25_088, 100_003] {
            let xs: Vec<f32> = (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    0.5 + (state >> 40) as f32 / (1u64 << 24) as f32
                })
                .collect();
            let want = exact(&xs);
            let got = pairwise_sum(&xs) as f64;
            let mut blocked = BlockedSum::new();
            xs.iter().for_each(|&v| blocked.push(v));
            let got_blocked = blocked.take_total() as f64;
            assert_eq!(blocked.take_total(), 0.0, "n {n}: take_total empties the sum");
            let tol = 4.0 * f32::EPSILON as f64 * want.abs().max(1.0);
            assert!((got - want).abs() <= tol, "n {n}: pairwise {got} vs {want}");
            assert!((got_blocked - want).abs() <= tol, "n {n}: blocked {got_blocked} vs {want}");
            if n == 100_003 {
                let running = xs.iter().fold(0f32, |a, &v| a + v) as f64;
                assert!((running - want).abs() > 5.0 * tol, "a running sum should drift here: {running} vs {want}");
            }
        }
    }
}
