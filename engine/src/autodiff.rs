//! Reverse-mode autodiff over the IR: a loss, accuracy and the backward nodes appended to a forward
//! graph, so one training step (forward, loss, backward; the optimizer runs after it) is one graph.
//! Each op's vector-Jacobian product is its [`crate::ops::OpDef::vjp`]; gradients of broadcast
//! operands are summed back to the operand's shape ([`VjpCtx::unbroadcast`]).

use crate::error::{EngineError, Result};
use crate::graph::{Graph, GraphBuilder, ValueId, ValueKind};
use crate::ops::{Accuracy, BinaryOp, Loss, LossGrad, LossKind, Op, Softmax, UnaryOp, VjpCtx};
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
/// kind that fuses the activation into the loss. Otherwise a cross-entropy reads the output as
/// logits (`from_logits` None or true: PyTorch models end in a Linear layer) or as probabilities
/// (`from_logits` Some(false)); `Some(true)` also takes an output after a Softmax/Sigmoid as logits.
/// `loss` is a Keras loss name.
pub fn fuse_output(graph: &Graph, loss: &str, sparse: bool, from_logits: Option<bool>) -> Result<(ValueId, LossKind)> {
    let out = *graph.outputs.first().ok_or_else(|| EngineError::BadInput("the model has no output".into()))?;
    let producer = graph.nodes.iter().find(|n| n.output() == out);
    let softmax_in = producer.and_then(|n| match n.op {
        Op::Softmax(Softmax { axis, log: false }) if axis + 1 == graph.shape(out).len() => Some(n.inputs[0]),
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
            match (softmax_in, from_logits) {
                (_, Some(true)) => (out, logits),
                (Some(v), _) => (v, logits),
                (None, Some(false)) => (out, probs),
                (None, None) => (out, logits),
            }
        }
        "binary_crossentropy" => match (sigmoid_in, from_logits) {
            (_, Some(true)) => (out, LossKind::BinaryLogits),
            (Some(v), _) => (v, LossKind::BinaryLogits),
            (None, Some(false)) => (out, LossKind::BinaryProbs),
            (None, None) => (out, LossKind::BinaryLogits),
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
    let loss = b.node("loss", Op::Loss(Loss(spec.loss)), &ins)?;
    let acc = b.node("accuracy", Op::Accuracy(Accuracy(spec.loss)), &ins)?;
    let seed = b.node("loss/grad", Op::LossGrad(LossGrad(spec.loss)), &ins)?;

    // Which values depend on a trainable parameter.
    let nvals = b.graph_values_len();
    let mut needs: Vec<bool> =
        (0..nvals).map(|v| matches!(b.kind(v), ValueKind::Param { slot } if b.param_trainable(*slot))).collect();
    for idx in 0..forward_nodes {
        let n = &b.nodes()[idx];
        if n.inputs.iter().any(|&i| needs[i]) {
            for &o in &n.outputs {
                needs[o] = b.dtype(o).is_float();
            }
        }
    }
    let mut grads: Vec<Option<ValueId>> = vec![None; nvals];
    grads[spec.prediction] = Some(seed);
    for idx in (0..forward_nodes).rev() {
        let node = b.nodes()[idx].clone();
        // The gradient of every output; where only a later output (LstmCell's c) has one, the first
        // output's is zeros.
        let output_grads: Vec<Option<ValueId>> = node.outputs.iter().map(|&o| grads[o]).collect();
        if output_grads.iter().all(Option::is_none) || !node.inputs.iter().any(|&i| needs[i]) {
            continue;
        }
        let dy = match output_grads[0] {
            Some(dy) => dy,
            None => {
                let shape = b.shape(node.output()).to_vec();
                let zeros = vec![0.0; shape.iter().product()];
                b.constant(&format!("{}/grad/zero", node.name), shape, zeros)?
            }
        };
        let cx = &mut VjpCtx::new(&mut b, &node.name, &node.inputs, &node.outputs, dy, &output_grads, &needs);
        let input_grads = node.op.vjp(cx)?;
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
                && !b.nodes().iter().any(|n| n.output() == g && matches!(n.op, Op::Reshape(_)))
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
    let l = b.node("loss", Op::Loss(Loss(loss)), &ins)?;
    let acc = b.node("accuracy", Op::Accuracy(Accuracy(loss)), &ins)?;
    b.set_outputs(vec![l, acc]);
    Ok(b.finish())
}
