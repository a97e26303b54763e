//! Inference-form batch normalisation over axis 1:
//! `y = (x - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + bias[c]`. Training graphs replace it
//! by batch statistics and running-statistic updates (`crate::training_rewrite`).

use crate::cpu::real::Real;
use crate::error::{EngineError, Result};
use crate::graph::ValueId;
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity};
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const BATCHNORM: &str = include_str!("../../../shaders/batchnorm.wgsl");

/// Inference-form batch normalisation over axis 1. Inputs: x, scale, bias, mean, var.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm {
    /// Added to the variance.
    pub epsilon: f32,
    /// The running-statistics momentum the model declares (None: the trainer's default).
    pub momentum: Option<f32>,
}

crate::uniforms! {
    /// shaders/batchnorm.wgsl: `inner` elements per channel and sample.
    pub struct BatchNormParams {
        n: u32, channels: u32, inner: u32, x: u32, scale: u32, bias: u32, mean: u32, var: u32, out: u32, epsilon: f32,
    }
}

impl OpDef for BatchNorm {
    fn name(&self) -> &'static str {
        "BatchNorm"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 5, 5)?;
        let x = inputs[0];
        if x.len() < 2 {
            return Err(format!("input shape {x:?} has no channel axis"));
        }
        for s in &inputs[1..] {
            if numel(s) != x[1] {
                return Err(format!("per-channel tensor of shape {s:?} does not match {} channels", x[1]));
            }
        }
        Ok(x.to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, shape) = (args.x(0), args.s(0));
        let (scale, bias, mean, var) = (args.x(1), args.x(2), args.x(3), args.x(4));
        let c = shape[1];
        let inner: usize = shape[2..].iter().product();
        for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
            let ch = (i / inner) % c;
            *o = (v - mean[ch]) / (var[ch] + T::of(self.epsilon)).sqrt() * scale[ch] + bias[ch];
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(EngineError::Unsupported(format!(
            "node `{}`: an inference-form BatchNormalization has no gradient; train the graph rewritten by training_rewrite",
            cx.name
        )))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let s = cx.in_shape(0);
        let inner: usize = s[2..].iter().product();
        let ins: Vec<_> = (0..5).map(|i| cx.in_loc(i)).collect();
        let o = cx.out_loc();
        let n = cx.out_len();
        let params = BatchNormParams {
            n: n as u32,
            channels: s[1] as u32,
            inner: inner as u32,
            x: ins[0].offset as u32,
            scale: ins[1].offset as u32,
            bias: ins[2].offset as u32,
            mean: ins[3].offset as u32,
            var: ins[4].offset as u32,
            out: o.offset as u32,
            epsilon: self.epsilon,
        };
        Ok(vec![Dispatch::new(
            BATCHNORM,
            &[],
            params,
            &[
                ("X", ins[0].region),
                ("SCALE", ins[1].region),
                ("BIAS", ins[2].region),
                ("MEAN", ins[3].region),
                ("VAR", ins[4].region),
                ("O", o.region),
            ],
            &[],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        [vec![3, 4], vec![2, 5, 7], vec![2, 3, 4, 5], vec![1, 2, 3, 2, 3], vec![rng.size(1, 9), rng.size(1, 9)]]
            .into_iter()
            .map(|x| {
                let c = x[1];
                let stat = |lo, hi| CaseInput::uniform(vec![c], lo, hi).as_param();
                OpCase::new(
                    BatchNorm { epsilon: 1e-3, momentum: None },
                    vec![
                        CaseInput::uniform(x, -3.0, 3.0),
                        stat(0.5, 2.0),
                        stat(-1.0, 1.0),
                        stat(-1.0, 1.0),
                        stat(0.1, 2.0),
                    ],
                )
            })
            .collect()
    }
}
