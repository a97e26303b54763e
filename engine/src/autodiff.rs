//! Reverse-mode autodiff over the IR: a loss, accuracy and the backward nodes appended to a forward
//! graph, so one training step (forward, loss, backward; the optimizer runs after it) is one graph.
//! Each op's vector-Jacobian product is in [`vjp`]; gradients of broadcast operands are summed back
//! to the operand's shape.

use crate::error::{EngineError, Result};
use crate::graph::{Graph, GraphBuilder, ValueId, ValueKind};
use crate::op::{BinaryOp, LossKind, MatMulDims, Op, ReduceOp, UnaryOp};
use crate::optimizer::Optimizer;

/// What to train: the loss, and which value it reads.
#[derive(Clone, Debug)]
pub struct TrainingSpec {
    /// The loss.
    pub loss: LossKind,
    /// The value the loss reads (the model output, or the logits below a fused Softmax/Sigmoid).
    pub prediction: ValueId,
    /// Shape of the target input: [N] for sparse labels, else the prediction's shape.
    pub target_shape: Vec<usize>,
    /// The optimizer.
    pub optimizer: Optimizer,
}

/// Names of the inputs a training graph adds after the model's own.
pub const TARGET_INPUT: &str = "distk:target";
/// See [`TARGET_INPUT`].
pub const WEIGHT_INPUT: &str = "distk:row_weight";

/// For a model output produced by Softmax (last axis) or Sigmoid, the value below it and the loss
/// kind that fuses the activation into the loss; otherwise the output itself and the loss on
/// probabilities. `loss` is a Keras loss name.
pub fn fuse_output(graph: &Graph, loss: &str, sparse: bool) -> Result<(ValueId, LossKind)> {
    let out = *graph.outputs.first().ok_or_else(|| EngineError::BadInput("the model has no output".into()))?;
    let producer = graph.nodes.iter().find(|n| n.output == out);
    let softmax_in = producer.and_then(|n| match n.op {
        Op::Softmax { axis, log: false } if axis + 1 == graph.shape(out).len() => Some(n.inputs[0]),
        _ => None,
    });
    let sigmoid_in = producer.and_then(|n| (n.op == Op::Unary(UnaryOp::Sigmoid)).then_some(n.inputs[0]));
    Ok(match loss {
        "sparse_categorical_crossentropy" | "categorical_crossentropy" => {
            let (logits, probs) = if sparse {
                (LossKind::SparseCategoricalLogits, LossKind::SparseCategoricalProbs)
            } else {
                (LossKind::CategoricalLogits, LossKind::CategoricalProbs)
            };
            match softmax_in {
                Some(v) => (v, logits),
                None => (out, probs),
            }
        }
        "binary_crossentropy" => match sigmoid_in {
            Some(v) => (v, LossKind::BinaryLogits),
            None => (out, LossKind::BinaryProbs),
        },
        "mean_squared_error" | "mse" => (out, LossKind::MeanSquaredError),
        "mean_absolute_error" | "mae" => (out, LossKind::MeanAbsoluteError),
        other => {
            return Err(EngineError::BadInput(format!(
                "unknown loss `{other}`: use sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, mean_squared_error or mean_absolute_error"
            )));
        }
    })
}

/// Appends target and row-weight inputs, the loss, the accuracy and the backward pass to `graph`.
/// The result's inputs are the model's, then target, then row weights; its outputs are [loss,
/// accuracy]; `param_grads` holds each trainable parameter's gradient.
pub fn build_training_graph(graph: Graph, spec: &TrainingSpec) -> Result<Graph> {
    let forward_nodes = graph.nodes.len();
    let rows =
        *graph.shape(spec.prediction).first().ok_or_else(|| EngineError::BadInput("scalar prediction".into()))?;
    let existing_weight = graph.inputs.iter().copied().find(|&i| graph.values[i].name == WEIGHT_INPUT);
    let mut b = GraphBuilder::from_graph(graph);
    let target = b.input(TARGET_INPUT, spec.target_shape.clone());
    let weight = match existing_weight {
        Some(w) => w,
        None => b.input(WEIGHT_INPUT, vec![rows]),
    };
    let ins = [spec.prediction, target, weight];
    let loss = b.node("loss", Op::Loss(spec.loss), &ins)?;
    let acc = b.node("accuracy", Op::Accuracy(spec.loss), &ins)?;
    let seed = b.node("loss/grad", Op::LossGrad(spec.loss), &ins)?;

    // Which values depend on a trainable parameter.
    let nvals = b.graph_values_len();
    let mut needs: Vec<bool> =
        (0..nvals).map(|v| matches!(b.kind(v), ValueKind::Param { slot } if b.param_trainable(*slot))).collect();
    for idx in 0..forward_nodes {
        let n = &b.nodes()[idx];
        if n.inputs.iter().any(|&i| needs[i]) {
            let o = n.output;
            needs[o] = true;
        }
    }
    let mut grads: Vec<Option<ValueId>> = vec![None; nvals];
    grads[spec.prediction] = Some(seed);
    for idx in (0..forward_nodes).rev() {
        let node = b.nodes()[idx].clone();
        let Some(dy) = grads[node.output] else { continue };
        if !node.inputs.iter().any(|&i| needs[i]) {
            continue;
        }
        let input_grads = vjp(&mut b, &node.op, &node.inputs, node.output, dy, &needs, &node.name)?;
        for (&inp, g) in node.inputs.iter().zip(input_grads) {
            let Some(g) = g else { continue };
            if !needs[inp] {
                continue;
            }
            grads[inp] = Some(match grads[inp] {
                None => g,
                Some(prev) => b.node(&format!("{}/grad_sum", node.name), Op::Binary(BinaryOp::Add), &[prev, g])?,
            });
        }
    }
    for (v, grad) in grads.iter().enumerate() {
        let ValueKind::Param { slot } = *b.kind(v) else { continue };
        if !b.param_trainable(slot) {
            continue;
        }
        if let Some(g) = *grad {
            // The gradient is pinned into the gradient buffer: it must be a value of its own.
            let own = matches!(b.kind(g), ValueKind::Activation)
                && !b.nodes().iter().any(|n| n.output == g && matches!(n.op, Op::Reshape { .. }))
                && !b.param_grad_values().contains(&g);
            let g = if own { g } else { b.node("param/grad", Op::Unary(UnaryOp::Identity), &[g])? };
            b.set_param_grad(slot, g);
        }
    }
    b.set_outputs(vec![loss, acc]);
    b.set_optimizer(spec.optimizer);
    Ok(b.finish())
}

/// Appends target and row-weight inputs, the loss and the accuracy to `graph` (no backward pass):
/// the graph `evaluate` and validation run. Outputs are [loss, accuracy].
pub fn build_eval_graph(graph: Graph, loss: LossKind, prediction: ValueId, target_shape: Vec<usize>) -> Result<Graph> {
    let rows = *graph.shape(prediction).first().ok_or_else(|| EngineError::BadInput("scalar prediction".into()))?;
    let mut b = GraphBuilder::from_graph(graph);
    let target = b.input(TARGET_INPUT, target_shape);
    let weight = b.input(WEIGHT_INPUT, vec![rows]);
    let ins = [prediction, target, weight];
    let l = b.node("loss", Op::Loss(loss), &ins)?;
    let acc = b.node("accuracy", Op::Accuracy(loss), &ins)?;
    b.set_outputs(vec![l, acc]);
    Ok(b.finish())
}

/// Sums `g` (shaped like the op's output) down to `shape` over broadcast dims.
fn unbroadcast(b: &mut GraphBuilder, g: ValueId, shape: &[usize], name: &str) -> Result<ValueId> {
    let gs = b.shape(g).to_vec();
    if gs == shape {
        return Ok(g);
    }
    let lead = gs.len() - shape.len();
    let axes: Vec<usize> = (0..gs.len()).filter(|&i| i < lead || (shape[i - lead] == 1 && gs[i] != 1)).collect();
    let r = b.node(&format!("{name}/unbroadcast"), Op::Reduce { op: ReduceOp::Sum, axes, keepdims: true }, &[g])?;
    b.node(&format!("{name}/unbroadcast_shape"), Op::Reshape { shape: shape.to_vec() }, &[r])
}

/// The gradient of each input of one node, given the gradient `dy` of its output.
fn vjp(
    b: &mut GraphBuilder,
    op: &Op,
    inputs: &[ValueId],
    output: ValueId,
    dy: ValueId,
    needs: &[bool],
    name: &str,
) -> Result<Vec<Option<ValueId>>> {
    let gname = format!("{name}/grad");
    let shape = |b: &GraphBuilder, v: ValueId| b.shape(v).to_vec();
    let need = |i: usize| needs[inputs[i]];
    Ok(match op {
        Op::MatMul { trans_a: ta, trans_b: tb, alpha } => {
            let (a, bb) = (inputs[0], inputs[1]);
            let (sa, sb) = (shape(b, a), shape(b, bb));
            let d = MatMulDims::new(&sa, &sb, *ta, *tb).map_err(EngineError::Unsupported)?;
            let batched = d.batch_count() > 1 || sa.len() > 2 || sb.len() > 2;
            // With batch dims, only the common forms are differentiated: both operands batched alike,
            // or B shared (a dense layer over a sequence), where dB sums over the batch.
            let (mut da, mut db) = (None, None);
            if need(0) {
                let g = if *ta {
                    b.node(&gname, Op::MatMul { trans_a: *tb, trans_b: true, alpha: *alpha }, &[bb, dy])?
                } else {
                    b.node(&gname, Op::MatMul { trans_a: false, trans_b: !*tb, alpha: *alpha }, &[dy, bb])?
                };
                da = Some(unbroadcast(b, g, &sa, &gname)?);
            }
            if need(1) {
                if batched && d.b_batch_stride == 0 && !*ta {
                    // Flatten the batch into rows: dB = A_flat^T dY_flat (or its transpose).
                    let rows = d.batch_count() * d.m;
                    let af = b.node(&gname, Op::Reshape { shape: vec![rows, d.k] }, &[a])?;
                    let gf = b.node(&gname, Op::Reshape { shape: vec![rows, d.n] }, &[dy])?;
                    let g = if *tb {
                        b.node(&gname, Op::MatMul { trans_a: true, trans_b: false, alpha: *alpha }, &[gf, af])?
                    } else {
                        b.node(&gname, Op::MatMul { trans_a: true, trans_b: false, alpha: *alpha }, &[af, gf])?
                    };
                    db = Some(b.node(&gname, Op::Reshape { shape: sb.clone() }, &[g])?);
                } else if batched && d.b_batch_stride == 0 {
                    return Err(EngineError::Unsupported(format!(
                        "node `{name}`: the gradient of a batched MatMul with transposed A and a shared B"
                    )));
                } else {
                    let g = if *tb {
                        b.node(&gname, Op::MatMul { trans_a: true, trans_b: *ta, alpha: *alpha }, &[dy, a])?
                    } else {
                        b.node(&gname, Op::MatMul { trans_a: !*ta, trans_b: false, alpha: *alpha }, &[a, dy])?
                    };
                    db = Some(unbroadcast(b, g, &sb, &gname)?);
                }
            }
            vec![da, db]
        }
        Op::Binary(bop) => {
            let (a, c) = (inputs[0], inputs[1]);
            let (sa, sc) = (shape(b, a), shape(b, c));
            let mut out = vec![None, None];
            let mul = |b: &mut GraphBuilder, x: ValueId, y: ValueId| b.node(&gname, Op::Binary(BinaryOp::Mul), &[x, y]);
            match bop {
                BinaryOp::Add | BinaryOp::Sub => {
                    if need(0) {
                        out[0] = Some(unbroadcast(b, dy, &sa, &gname)?);
                    }
                    if need(1) {
                        let g =
                            if *bop == BinaryOp::Sub { b.node(&gname, Op::Unary(UnaryOp::Neg), &[dy])? } else { dy };
                        out[1] = Some(unbroadcast(b, g, &sc, &gname)?);
                    }
                }
                BinaryOp::Mul => {
                    if need(0) {
                        let g = mul(b, dy, c)?;
                        out[0] = Some(unbroadcast(b, g, &sa, &gname)?);
                    }
                    if need(1) {
                        let g = mul(b, dy, a)?;
                        out[1] = Some(unbroadcast(b, g, &sc, &gname)?);
                    }
                }
                BinaryOp::Div => {
                    if need(0) {
                        let g = b.node(&gname, Op::Binary(BinaryOp::Div), &[dy, c])?;
                        out[0] = Some(unbroadcast(b, g, &sa, &gname)?);
                    }
                    if need(1) {
                        // d(a/c)/dc = -(a/c)/c = -y/c
                        let t = b.node(&gname, Op::Binary(BinaryOp::Div), &[output, c])?;
                        let t = mul(b, dy, t)?;
                        let g = b.node(&gname, Op::Unary(UnaryOp::Neg), &[t])?;
                        out[1] = Some(unbroadcast(b, g, &sc, &gname)?);
                    }
                }
                BinaryOp::Pow => {
                    if need(0) {
                        // c * a^(c-1) = c * y / a
                        let t = b.node(&gname, Op::Binary(BinaryOp::Div), &[output, a])?;
                        let t = mul(b, t, c)?;
                        let g = mul(b, dy, t)?;
                        out[0] = Some(unbroadcast(b, g, &sa, &gname)?);
                    }
                    if need(1) {
                        let l = b.node(&gname, Op::Unary(UnaryOp::Log), &[a])?;
                        let t = mul(b, output, l)?;
                        let g = mul(b, dy, t)?;
                        out[1] = Some(unbroadcast(b, g, &sc, &gname)?);
                    }
                }
                BinaryOp::Min | BinaryOp::Max => {
                    // dy goes to a where it is chosen (a > c for Max, a < c for Min), to c elsewhere.
                    let diff = if *bop == BinaryOp::Max { [a, c] } else { [c, a] };
                    let diff = b.node(&gname, Op::Binary(BinaryOp::Sub), &diff)?;
                    let ga = b.node(&gname, Op::UnaryGrad(UnaryOp::Relu), &[diff, dy])?;
                    if need(1) {
                        let gc = b.node(&gname, Op::Binary(BinaryOp::Sub), &[dy, ga])?;
                        out[1] = Some(unbroadcast(b, gc, &sc, &gname)?);
                    }
                    if need(0) {
                        out[0] = Some(unbroadcast(b, ga, &sa, &gname)?);
                    }
                }
            }
            out
        }
        Op::Unary(UnaryOp::Identity) => vec![Some(dy)],
        Op::Unary(UnaryOp::Neg) => vec![Some(b.node(&gname, Op::Unary(UnaryOp::Neg), &[dy])?)],
        Op::Unary(u) => vec![Some(b.node(&gname, Op::UnaryGrad(*u), &[inputs[0], dy])?)],
        Op::Softmax { axis, log } => {
            vec![Some(b.node(&gname, Op::SoftmaxGrad { axis: *axis, log: *log }, &[output, dy])?)]
        }
        Op::Conv(attrs) => {
            let (x, w) = (inputs[0], inputs[1]);
            let mut out = vec![None, None, None];
            if need(0) {
                out[0] = Some(b.node(
                    &gname,
                    Op::ConvGradInput { attrs: attrs.clone(), input_shape: shape(b, x) },
                    &[dy, w],
                )?);
            }
            if need(1) {
                out[1] = Some(b.node(
                    &gname,
                    Op::ConvGradWeight { attrs: attrs.clone(), weight_shape: shape(b, w) },
                    &[x, dy],
                )?);
            }
            if inputs.len() > 2 && need(2) {
                let rank = shape(b, dy).len();
                let axes: Vec<usize> = (0..rank).filter(|&i| i != 1).collect();
                out[2] = Some(b.node(&gname, Op::Reduce { op: ReduceOp::Sum, axes, keepdims: false }, &[dy])?);
            }
            out
        }
        Op::Pool(p) => vec![Some(b.node(&gname, Op::PoolGrad(p.clone()), &[inputs[0], dy])?)],
        Op::Reshape { .. } => {
            let s = shape(b, inputs[0]);
            vec![Some(b.node(&gname, Op::Reshape { shape: s }, &[dy])?)]
        }
        Op::Transpose { perm } => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            vec![Some(b.node(&gname, Op::Transpose { perm: inv }, &[dy])?)]
        }
        Op::Concat { axis } => {
            let mut out = Vec::new();
            let mut at = 0;
            for (i, &v) in inputs.iter().enumerate() {
                let len = shape(b, v)[*axis];
                out.push(if need(i) {
                    Some(b.node(&gname, Op::Slice { axis: *axis, start: at, len }, &[dy])?)
                } else {
                    None
                });
                at += len;
            }
            out
        }
        Op::Reduce { op, axes, keepdims } => {
            let s = shape(b, inputs[0]);
            let kept: Vec<usize> = s.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
            let mut g = dy;
            if !keepdims {
                g = b.node(&gname, Op::Reshape { shape: kept }, &[g])?;
            }
            g = b.node(&gname, Op::Broadcast { shape: s.clone() }, &[g])?;
            if *op == ReduceOp::Mean {
                let count: usize = axes.iter().map(|&a| s[a]).product();
                let k = b.constant(&format!("{gname}/scale"), vec![], vec![1.0 / count.max(1) as f32])?;
                g = b.node(&gname, Op::Binary(BinaryOp::Mul), &[g, k])?;
            }
            vec![Some(g)]
        }
        Op::Broadcast { .. } => {
            let s = shape(b, inputs[0]);
            vec![Some(unbroadcast(b, dy, &s, &gname)?)]
        }
        Op::BatchNorm { .. } => {
            return Err(EngineError::Unsupported(format!(
                "node `{name}`: an inference-form BatchNormalization has no gradient; train the graph rewritten by training_rewrite"
            )));
        }
        Op::Dropout { .. } => vec![Some(dy)],
        Op::DropoutMask { .. } => vec![None],
        other => {
            return Err(EngineError::Unsupported(format!("node `{name}`: {} has no gradient rule", other.name())));
        }
    })
}
