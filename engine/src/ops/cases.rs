//! Test cases every op registers: the ops, input shapes (sizes of 1, odd sizes, sizes that are not
//! tile multiples) and value ranges the registry-driven tests run (WGSL against the CPU
//! reference; f64 finite differences of the gradient).

use crate::dtype::DType;
use crate::ops::Op;

/// How one input of a case is filled.
#[derive(Clone, Debug, PartialEq)]
pub enum CaseData {
    /// Uniform random values in `[lo, hi)`.
    Uniform(f32, f32),
    /// These values.
    Values(Vec<f32>),
}

/// One input of a case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseInput {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: CaseData,
    /// Whether it is a parameter (read from the parameter buffer) rather than a graph input.
    pub param: bool,
    /// Its element type: integer and boolean inputs are fed as typed graph inputs (constants in
    /// the gradient checks, which perturb only floats).
    pub dtype: DType,
}

impl CaseInput {
    /// A graph input with uniform random values in `[lo, hi)`.
    pub fn uniform(shape: Vec<usize>, lo: f32, hi: f32) -> Self {
        CaseInput { shape, data: CaseData::Uniform(lo, hi), param: false, dtype: DType::F32 }
    }

    /// A graph input with these values.
    pub fn values(shape: Vec<usize>, values: Vec<f32>) -> Self {
        CaseInput { shape, data: CaseData::Values(values), param: false, dtype: DType::F32 }
    }

    /// An int64 graph input with these values (indices).
    pub fn indices(shape: Vec<usize>, values: Vec<f32>) -> Self {
        CaseInput { dtype: DType::I64, ..CaseInput::values(shape, values) }
    }

    /// A boolean graph input with these values (0 or 1).
    pub fn mask(shape: Vec<usize>, values: Vec<f32>) -> Self {
        CaseInput { dtype: DType::Bool, ..CaseInput::values(shape, values) }
    }

    /// The same input held as a parameter.
    pub fn as_param(mut self) -> Self {
        self.param = true;
        self
    }
}

/// One case: an op applied to inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct OpCase {
    /// The op.
    pub op: Op,
    /// Its inputs.
    pub inputs: Vec<CaseInput>,
    /// Whether the finite-difference test checks its gradient (differentiable forward ops, on
    /// ranges away from kinks).
    pub check_gradient: bool,
}

impl OpCase {
    /// A case on inputs with uniform values in `[lo, hi)`, every input a graph input.
    pub fn uniform(op: impl Into<Op>, shapes: &[Vec<usize>], lo: f32, hi: f32) -> Self {
        OpCase {
            op: op.into(),
            inputs: shapes.iter().map(|s| CaseInput::uniform(s.clone(), lo, hi)).collect(),
            check_gradient: false,
        }
    }

    /// A case on the given inputs.
    pub fn new(op: impl Into<Op>, inputs: Vec<CaseInput>) -> Self {
        OpCase { op: op.into(), inputs, check_gradient: false }
    }

    /// Marks the case for the finite-difference gradient check.
    pub fn with_gradient(mut self) -> Self {
        self.check_gradient = true;
        self
    }

    /// Makes the inputs flagged `true` parameters (only float inputs can be).
    pub fn with_params(mut self, params: &[bool]) -> Self {
        for (input, &p) in self.inputs.iter_mut().zip(params) {
            input.param = p && input.dtype.is_float();
        }
        self
    }
}

/// A small seeded generator (SplitMix64) for case shapes and values, so the engine needs no
/// random-number dependency.
#[derive(Clone, Debug)]
pub struct CaseRng(u64);

impl CaseRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        CaseRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A size in `[lo, hi]`.
    pub fn size(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// A float in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}
