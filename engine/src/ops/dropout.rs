//! Dropout: the identity in inference; in training graphs `x * DropoutMask(seed)`, the mask
//! `(hash(seed, i) >= rate) / (1 - rate)` the same on every executor.

use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, UnaryOp, VjpCtx, arity};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const DROPOUT_MASK: &str = include_str!("../../../shaders/dropout_mask.wgsl");

/// Dropout: identity in inference; in training graphs it becomes `x * DropoutMask`. Input: x.
/// With `mask`, a second output: the boolean keep-mask (all true in inference; in training the
/// mask drawn for the step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Fraction of elements zeroed in training.
    pub rate: f32,
    /// Whether the node also outputs its mask (ONNX Dropout's second output).
    pub mask: bool,
}

/// A dropout mask: `(hash(seed, i) >= rate) / (1 - rate)` per element, the same on every executor.
/// Input: seed [1] (a new value every step).
#[derive(Clone, Debug, PartialEq)]
pub struct DropoutMask {
    /// The mask's shape.
    pub shape: Vec<usize>,
    /// Fraction of zeros.
    pub rate: f32,
}

/// The dropout mask value of element `i` for `seed`: a PCG-style integer hash mapped to [0, 1),
/// identical in the CPU reference and the WGSL kernel.
pub fn dropout_keep(seed: u32, i: u32, rate: f32) -> f32 {
    let mut h = seed ^ i.wrapping_mul(0x9E37_79B9);
    h = h.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    h = ((h >> ((h >> 28) + 4)) ^ h).wrapping_mul(277_803_737);
    h = (h >> 22) ^ h;
    let u = (h >> 8) as f32 / 16_777_216.0;
    if u >= rate { 1.0 / (1.0 - rate) } else { 0.0 }
}

fn check_rate(rate: f32) -> std::result::Result<(), String> {
    if (0.0..1.0).contains(&rate) { Ok(()) } else { Err(format!("dropout rate {rate} is not in [0, 1)")) }
}

crate::uniforms! {
    /// shaders/dropout_mask.wgsl.
    pub struct DropoutMaskParams { n: u32, seed: u32, out: u32, rate: f32 }
}

impl OpDef for Dropout {
    fn name(&self) -> &'static str {
        "Dropout"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        check_rate(self.rate)?;
        Ok(inputs[0].to_vec())
    }

    fn extra_outputs(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<(Vec<usize>, DType)>, String> {
        Ok(if self.mask { vec![(self.output_shape(inputs)?, DType::Bool)] } else { Vec::new() })
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        out.copy_from_slice(args.x(0));
    }

    fn eval_outputs<T: Real>(&self, args: &CpuArgs<'_, T>, outs: &mut [&mut [T]]) {
        self.eval(args, &mut *outs[0]);
        if let Some(mask) = outs.get_mut(1) {
            mask.fill(T::one());
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Ok(vec![Some(cx.dy)])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let mut out = UnaryOp::Identity.lower(cx)?;
        if self.mask {
            out.push(crate::ops::unary::unary_dispatch_to(cx, cx.out_loc_of(1), "1.0".into()));
        }
        Ok(out)
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        vec![
            OpCase::uniform(Dropout { rate: 0.3, mask: false }, &[vec![rng.size(1, 99), 3]], -1.0, 1.0),
            OpCase::uniform(Dropout { rate: 0.3, mask: true }, &[vec![rng.size(1, 99), 3]], -1.0, 1.0),
            OpCase::uniform(Dropout { rate: 0.3, mask: false }, &[vec![2, 3]], -1.0, 1.0).with_gradient(),
        ]
    }
}

impl OpDef for DropoutMask {
    fn name(&self) -> &'static str {
        "DropoutMask"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        check_rate(self.rate)?;
        Ok(self.shape.clone())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let seed = args.x(0)[0].seed_bits();
        for (i, o) in out.iter_mut().enumerate() {
            *o = T::of(dropout_keep(seed, i as u32, self.rate));
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let _ = cx;
        Ok(vec![None])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (s, o, n) = (cx.in_loc(0), cx.out_loc(), cx.out_len());
        let params = DropoutMaskParams { n: n as u32, seed: s.offset as u32, out: o.offset as u32, rate: self.rate };
        Ok(vec![Dispatch::new(DROPOUT_MASK, &[], params, &[("S", s.region), ("O", o.region)], &[], cx.grid(n))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let seed = f32::from_bits(rng.next_u64() as u32 & 0x3fff_ffff);
        [0.0, 0.25, 0.5]
            .into_iter()
            .map(|rate| {
                OpCase::new(DropoutMask { shape: vec![3, 333], rate }, vec![CaseInput::values(vec![1], vec![seed])])
            })
            .collect()
    }
}
