//! What the indexing ops share: an index held as a float wrapped the ONNX way, the scatter
//! reductions, and the WGSL helpers of both (shaders/index.wgsl).

use crate::cpu::real::Real;

/// shaders/index.wgsl: `wrap_index` and `scatter_reduce`, included by the indexing kernels.
pub const INDEX_WGSL: &str = include_str!("../../../shaders/index.wgsl");

/// An index stored as a float, wrapped against `dim` (negative counts from the end); `None` when it
/// is out of range. Out-of-range indices read 0 and write nowhere on both executors (a kernel
/// cannot stop the step), as TensorFlow's GPU kernels do.
pub fn wrap_index<T: Real>(x: T, dim: usize) -> Option<usize> {
    let k = x.to_f64()? as i64;
    let k = if k < 0 { k + dim as i64 } else { k };
    (0..dim as i64).contains(&k).then_some(k as usize)
}

/// How a scatter combines an update with the value already there (ONNX's `reduction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// The update replaces the value (the last of several to the same place wins).
    None,
    /// Added.
    Add,
    /// Multiplied.
    Mul,
    /// The larger.
    Max,
    /// The smaller.
    Min,
}

impl Reduction {
    /// Combines `v` with update `u`.
    pub fn apply<T: Real>(self, v: T, u: T) -> T {
        match self {
            Reduction::None => u,
            Reduction::Add => v + u,
            Reduction::Mul => v * u,
            Reduction::Max => v.max(u),
            Reduction::Min => v.min(u),
        }
    }

    /// The code shaders/index.wgsl's `scatter_reduce` takes.
    pub fn code(self) -> u32 {
        match self {
            Reduction::None => 0,
            Reduction::Add => 1,
            Reduction::Mul => 2,
            Reduction::Max => 3,
            Reduction::Min => 4,
        }
    }

    /// Every reduction (for the test cases).
    pub const ALL: [Reduction; 5] = [Reduction::None, Reduction::Add, Reduction::Mul, Reduction::Max, Reduction::Min];
}

/// Index values for a test case: `n` integers in `[-dim, dim)` (negative ones exercise the wrap).
pub fn case_indices(rng: &mut crate::ops::CaseRng, n: usize, dim: usize) -> Vec<f32> {
    (0..n).map(|_| rng.size(0, 2 * dim - 1) as f32 - dim as f32).collect()
}

/// Distinct index values for a test case: a permutation's first `n` of `0..dim` (scatters with
/// replacement have one answer only when no two updates meet).
pub fn case_distinct_indices(rng: &mut crate::ops::CaseRng, n: usize, dim: usize) -> Vec<f32> {
    let mut all: Vec<usize> = (0..dim).collect();
    for i in (1..dim).rev() {
        all.swap(i, rng.size(0, i));
    }
    all[..n].iter().map(|&k| k as f32).collect()
}
