//! The training losses (Keras semantics) as ops: the weighted mean loss over rows
//! `sum_i w_i l_i / sum_i w_i` ([`Loss`], shape [1]), its gradient with respect to the prediction
//! ([`LossGrad`]) and the weighted accuracy ([`Accuracy`]). The per-row equations are in
//! [`crate::ops::loss_reference`], the CPU reference the WGSL kernels (shaders/loss.wgsl) match.

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::loss_reference::{accuracy, loss, loss_grad};
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

const LOSS: &str = include_str!("../../../shaders/loss.wgsl");

/// The training losses (Keras names), each in the form the engine computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Integer labels (as f32, shape [N]) against logits: softmax fused, log-sum-exp.
    SparseCategoricalLogits,
    /// Integer labels against probabilities: `-log(clip(p, 1e-7, 1 - 1e-7))`.
    SparseCategoricalProbs,
    /// One-hot (or soft) targets [N, C] against logits.
    CategoricalLogits,
    /// One-hot targets against probabilities (clipped, and normalised as Keras does).
    CategoricalProbs,
    /// Binary targets against logits: sigmoid fused; mean over the last axis.
    BinaryLogits,
    /// Binary targets against probabilities (clipped); mean over the last axis.
    BinaryProbs,
    /// Mean squared error over the last axis.
    MeanSquaredError,
    /// Mean absolute error over the last axis.
    MeanAbsoluteError,
}

impl LossKind {
    /// Whether targets are class indices ([N]) rather than a tensor shaped like the prediction.
    pub fn sparse_targets(self) -> bool {
        matches!(self, LossKind::SparseCategoricalLogits | LossKind::SparseCategoricalProbs)
    }

    /// Whether the prediction input is the logits (the output activation fused into the loss).
    pub fn on_logits(self) -> bool {
        matches!(self, LossKind::SparseCategoricalLogits | LossKind::CategoricalLogits | LossKind::BinaryLogits)
    }
}

impl LossKind {
    /// Every kind.
    pub const ALL: [LossKind; 8] = [
        LossKind::SparseCategoricalLogits,
        LossKind::SparseCategoricalProbs,
        LossKind::CategoricalLogits,
        LossKind::CategoricalProbs,
        LossKind::BinaryLogits,
        LossKind::BinaryProbs,
        LossKind::MeanSquaredError,
        LossKind::MeanAbsoluteError,
    ];

    /// The kind's code in shaders/loss.wgsl.
    fn code(self) -> u32 {
        match self {
            LossKind::SparseCategoricalLogits => 0,
            LossKind::SparseCategoricalProbs => 1,
            LossKind::CategoricalLogits => 2,
            LossKind::CategoricalProbs => 3,
            LossKind::BinaryLogits => 4,
            LossKind::BinaryProbs => 5,
            LossKind::MeanSquaredError => 6,
            LossKind::MeanAbsoluteError => 7,
        }
    }
}

/// Weighted mean loss over rows, shape [1]. Inputs: prediction (logits for the fused kinds),
/// target, row weights [N].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss(pub LossKind);

/// Gradient of [`Loss`] with respect to the prediction. Inputs as for `Loss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossGrad(pub LossKind);

/// Weighted accuracy over rows, shape [1]. Inputs as for `Loss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accuracy(pub LossKind);

crate::uniforms! {
    /// shaders/loss.wgsl.
    pub struct LossParams { rows: u32, width: u32, pred: u32, target: u32, weight: u32, out: u32 }
}

/// Checks the three inputs of a loss op; returns the prediction's shape.
fn check_inputs(kind: LossKind, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
    arity(inputs, 3, 3)?;
    let (p, t, w) = (inputs[0], inputs[1], inputs[2]);
    if p.is_empty() || numel(w) != p[0] {
        return Err(format!("prediction {p:?} and row weights {w:?} disagree on rows"));
    }
    let target_ok = if kind.sparse_targets() { numel(t) == p[0] && p.len() == 2 } else { numel(t) == numel(p) };
    if !target_ok {
        return Err(format!("targets {t:?} do not fit predictions {p:?} for {kind:?}"));
    }
    Ok(p.to_vec())
}

/// The dispatch of one of the loss kernels: `entry` is `reduce_rows` (mode 0 loss, 1 accuracy) or
/// `grad_rows`.
fn loss_dispatch(cx: &LowerCtx<'_>, kind: LossKind, entry: &str, mode: u32) -> Dispatch {
    let ps = cx.in_shape(0);
    let rows = ps[0];
    let width = numel(ps) / rows.max(1);
    let (p, t, w, o) = (cx.in_loc(0), cx.in_loc(1), cx.in_loc(2), cx.out_loc());
    let template = LOSS.replace(&format!("fn {entry}("), "fn main(");
    let workgroups = if entry == "grad_rows" { [rows.div_ceil(64) as u32, 1, 1] } else { [1, 1, 1] };
    let params = LossParams {
        rows: rows as u32,
        width: width as u32,
        pred: p.offset as u32,
        target: t.offset as u32,
        weight: w.offset as u32,
        out: o.offset as u32,
    };
    Dispatch::new(
        &template,
        &[],
        params,
        &[("P", p.region), ("T", t.region), ("W", w.region), ("O", o.region)],
        &[("KIND", kind.code().to_string()), ("MODE", mode.to_string())],
        workgroups,
    )
}

/// For every kind: predictions, targets and row weights (the last rows padding, weight 0).
fn loss_cases(rng: &mut CaseRng, op: impl Fn(LossKind) -> crate::ops::Op) -> Vec<OpCase> {
    let mut out = Vec::new();
    for (n, c) in [(37, 10), (1, 1), (rng.size(2, 20), rng.size(2, 9))] {
        for kind in LossKind::ALL {
            // One class is degenerate for the categorical kinds (the renormalised probability is 1,
            // its loss log(1 - 1e-7) below the absolute precision Vulkan gives log near 1).
            let categorical =
                kind.sparse_targets() || matches!(kind, LossKind::CategoricalLogits | LossKind::CategoricalProbs);
            if categorical && c < 2 {
                continue;
            }
            let probs =
                matches!(kind, LossKind::SparseCategoricalProbs | LossKind::CategoricalProbs | LossKind::BinaryProbs);
            let pred = if probs {
                CaseInput::uniform(vec![n, c], 0.01, 0.99)
            } else {
                CaseInput::uniform(vec![n, c], -3.0, 3.0)
            };
            let target: Vec<f32> = if kind.sparse_targets() {
                (0..n).map(|_| rng.size(0, c - 1) as f32).collect()
            } else if matches!(kind, LossKind::MeanSquaredError | LossKind::MeanAbsoluteError) {
                (0..n * c).map(|_| rng.uniform(-1.0, 1.0)).collect()
            } else {
                (0..n * c).map(|i| (i % c == i / c % c) as i32 as f32).collect()
            };
            let tshape = if kind.sparse_targets() { vec![n] } else { vec![n, c] };
            let weight: Vec<f32> = (0..n).map(|i| if i + 5 < n || i == 0 { 1.0 } else { 0.0 }).collect();
            out.push(OpCase::new(
                op(kind),
                vec![pred, CaseInput::values(tshape, target), CaseInput::values(vec![n], weight)],
            ));
        }
    }
    // Sparse labels that are not class indices (too large, negative, fractional): NaN rows on both
    // executors, never a read outside the row.
    for kind in [LossKind::SparseCategoricalLogits, LossKind::SparseCategoricalProbs] {
        out.push(OpCase::new(
            op(kind),
            vec![
                CaseInput::uniform(vec![5, 3], 0.01, 0.99),
                CaseInput::values(vec![5], vec![0.0, 3.0, -1.0, 1.5, 2.0]),
                CaseInput::values(vec![5], vec![1.0; 5]),
            ],
        ));
    }
    out
}

impl OpDef for Loss {
    fn name(&self) -> &'static str {
        "Loss"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        check_inputs(self.0, inputs)?;
        Ok(vec![1])
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        out[0] = loss(self.0, args.x(0), args.x(1), args.x(2));
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "Loss (the training graph seeds the backward pass with LossGrad)"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        Ok(vec![loss_dispatch(cx, self.0, "reduce_rows", 0)])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        loss_cases(rng, |k| Loss(k).into())
    }
}

impl OpDef for LossGrad {
    fn name(&self) -> &'static str {
        "LossGrad"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        check_inputs(self.0, inputs)
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        loss_grad(self.0, args.x(0), args.x(1), args.x(2), out);
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "LossGrad"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        Ok(vec![loss_dispatch(cx, self.0, "grad_rows", 0)])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        loss_cases(rng, |k| LossGrad(k).into())
    }
}

impl OpDef for Accuracy {
    fn name(&self) -> &'static str {
        "Accuracy"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        check_inputs(self.0, inputs)?;
        Ok(vec![1])
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        out[0] = accuracy(self.0, args.x(0), args.x(1), args.x(2));
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "Accuracy"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        Ok(vec![loss_dispatch(cx, self.0, "reduce_rows", 1)])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        loss_cases(rng, |k| Accuracy(k).into())
    }
}
