//! The training form of a forward graph: BatchNormalization normalises with the batch statistics
//! (weighted by the row weights, so padded rows of a partial batch count for nothing) and updates
//! its running statistics; Dropout is active with a mask drawn per step; `--dropout NODE=RATE`
//! inserts Dropout after named nodes. Everything is expressed with ops that have gradient rules.
//!
//! BatchNorm: `mean = sum(w x) / cnt`, `var = sum(w (x - mean)^2) / cnt` (biased) over the batch and
//! spatial dims, `cnt = sum(w) * spatial`; `y = (x - mean) / sqrt(var + eps) * scale + bias`;
//! `running_mean <- m running_mean + (1 - m) mean`, `running_var <- m running_var + (1 - m) var cnt/(cnt-1)`
//! (the unbiased variance, as tf_keras and PyTorch do), `m` the node's momentum or the default
//! (Keras' 0.99, since tf2onnx writes none).

use crate::autodiff::WEIGHT_INPUT;
use crate::dtype::DType;
use crate::error::{EngineError, Result};
use crate::graph::{Graph, GraphBuilder, ValueId, ValueKind};
use crate::ops::{BatchNorm, BinaryOp, Cast, Dropout, DropoutMask, Op, Reduce, ReduceOp, Reshape, UnaryOp};
use crate::shape::numel;

/// Name of the per-step seed input of graphs with dropout.
pub const SEED_INPUT: &str = "distk:seed";

/// Training-mode choices.
#[derive(Clone, Debug)]
pub struct TrainingOptions {
    /// Momentum of BatchNorm running statistics when the node declares none.
    pub bn_momentum: f32,
    /// Dropout inserted after these nodes (name, rate).
    pub dropout_after: Vec<(String, f32)>,
}

impl Default for TrainingOptions {
    fn default() -> Self {
        TrainingOptions { bn_momentum: 0.99, dropout_after: Vec::new() }
    }
}

/// Rewrites `graph` into its training form. Adds the row-weight input when a BatchNorm needs it and
/// the seed input when there is dropout.
pub fn rewrite_for_training(graph: Graph, options: &TrainingOptions) -> Result<Graph> {
    for (name, _) in &options.dropout_after {
        if !graph.nodes.iter().any(|n| &n.name == name) {
            return Err(EngineError::BadInput(format!(
                "--dropout: the model has no node `{name}` (`distk-gpu inspect` lists the node names)"
            )));
        }
    }
    let has_bn = graph.nodes.iter().any(|n| matches!(n.op, Op::BatchNorm(BatchNorm { .. })));
    let has_dropout =
        !options.dropout_after.is_empty() || graph.nodes.iter().any(|n| matches!(n.op, Op::Dropout(Dropout { .. })));
    if !has_bn && !has_dropout {
        return Ok(graph);
    }
    let nodes = graph.nodes.clone();
    let outputs = graph.outputs.clone();
    let rows = graph.inputs.first().map_or(1, |&i| graph.shape(i).first().copied().unwrap_or(1));
    let mut b = GraphBuilder::from_graph(Graph { nodes: Vec::new(), outputs: Vec::new(), ..graph });
    let weight = has_bn.then(|| b.input(WEIGHT_INPUT, vec![rows]));
    let seed = has_dropout.then(|| b.input(SEED_INPUT, vec![1]));
    let mut map: Vec<ValueId> = (0..b.graph_values_len()).collect();
    for node in &nodes {
        let ins: Vec<ValueId> = node.inputs.iter().map(|&v| map[v]).collect();
        let mut out = match &node.op {
            Op::BatchNorm(BatchNorm { epsilon, momentum }) => {
                let w = weight.ok_or_else(|| EngineError::BadInput("internal: no row weights".into()))?;
                batch_norm_train(&mut b, &node.name, &ins, w, *epsilon, momentum.unwrap_or(options.bn_momentum))?
            }
            Op::Dropout(Dropout { rate, mask }) => {
                let (y, keep) = dropout_with_mask(&mut b, &node.name, ins[0], seed, *rate)?;
                if *mask {
                    map[node.outputs[1]] = keep;
                }
                y
            }
            op => {
                let outs = b.node_outputs(&node.name, op.clone(), &ins)?;
                for (&o, &n) in node.outputs.iter().zip(&outs).skip(1) {
                    map[o] = n;
                }
                outs[0]
            }
        };
        if let Some((_, rate)) = options.dropout_after.iter().find(|(n, _)| n == &node.name) {
            out = dropout(&mut b, &format!("{}/dropout", node.name), out, seed, *rate)?;
        }
        map[node.output()] = out;
    }
    b.set_outputs(outputs.iter().map(|&o| map[o]).collect());
    Ok(b.finish())
}

fn dropout(b: &mut GraphBuilder, name: &str, x: ValueId, seed: Option<ValueId>, rate: f32) -> Result<ValueId> {
    let seed = seed.ok_or_else(|| EngineError::BadInput("internal: no seed input".into()))?;
    if rate == 0.0 {
        return Ok(x);
    }
    let mask =
        b.node(&format!("{name}/mask"), Op::DropoutMask(DropoutMask { shape: b.shape(x).to_vec(), rate }), &[seed])?;
    b.node(name, Op::Binary(BinaryOp::Mul), &[x, mask])
}

/// [`dropout`] and its boolean keep-mask (ONNX Dropout's second output).
fn dropout_with_mask(
    b: &mut GraphBuilder,
    name: &str,
    x: ValueId,
    seed: Option<ValueId>,
    rate: f32,
) -> Result<(ValueId, ValueId)> {
    let shape = b.shape(x).to_vec();
    if rate == 0.0 {
        let ones = b.typed_constant(&format!("{name}/keep"), shape.clone(), vec![1.0; numel(&shape)], DType::Bool)?;
        return Ok((x, ones));
    }
    let seed = seed.ok_or_else(|| EngineError::BadInput("internal: no seed input".into()))?;
    let mask = b.node(&format!("{name}/mask"), Op::DropoutMask(DropoutMask { shape, rate }), &[seed])?;
    let keep = b.node(&format!("{name}/keep"), Op::Cast(Cast { to: DType::Bool }), &[mask])?;
    Ok((b.node(name, Op::Binary(BinaryOp::Mul), &[x, mask])?, keep))
}

fn batch_norm_train(
    b: &mut GraphBuilder,
    name: &str,
    ins: &[ValueId],
    w: ValueId,
    eps: f32,
    m: f32,
) -> Result<ValueId> {
    let (x, scale, bias, rm, rv) = (ins[0], ins[1], ins[2], ins[3], ins[4]);
    let xs = b.shape(x).to_vec();
    let (n, c, r) = (xs[0], xs[1], xs.len());
    let spatial: usize = xs[2..].iter().product();
    let mut bshape = vec![1; r];
    bshape[1] = c;
    let mut wshape = vec![1; r];
    wshape[0] = n;
    let axes: Vec<usize> = (0..r).filter(|&a| a != 1).collect();
    let k = |b: &mut GraphBuilder, tag: &str, v: f32| b.constant(&format!("{name}/{tag}"), vec![], vec![v]);
    let op = |b: &mut GraphBuilder, tag: &str, op: Op, ins: &[ValueId]| b.node(&format!("{name}/{tag}"), op, ins);
    let w_r = op(b, "w", Op::Reshape(Reshape { shape: wshape }), &[w])?;
    let sumw = op(b, "sumw", Op::Reduce(Reduce { op: ReduceOp::Sum, axes: vec![0], keepdims: false }), &[w])?;
    let sp = k(b, "spatial", spatial as f32)?;
    let cnt = op(b, "count", Op::Binary(BinaryOp::Mul), &[sumw, sp])?;
    let xw = op(b, "xw", Op::Binary(BinaryOp::Mul), &[x, w_r])?;
    let s1 = op(b, "sum", Op::Reduce(Reduce { op: ReduceOp::Sum, axes: axes.clone(), keepdims: true }), &[xw])?;
    let mean = op(b, "mean", Op::Binary(BinaryOp::Div), &[s1, cnt])?;
    let d = op(b, "centered", Op::Binary(BinaryOp::Sub), &[x, mean])?;
    let dd = op(b, "sq", Op::Binary(BinaryOp::Mul), &[d, d])?;
    let ddw = op(b, "sqw", Op::Binary(BinaryOp::Mul), &[dd, w_r])?;
    let s2 = op(b, "sqsum", Op::Reduce(Reduce { op: ReduceOp::Sum, axes, keepdims: true }), &[ddw])?;
    let var = op(b, "var", Op::Binary(BinaryOp::Div), &[s2, cnt])?;
    let e = k(b, "eps", eps)?;
    let ve = op(b, "var_eps", Op::Binary(BinaryOp::Add), &[var, e])?;
    let sd = op(b, "std", Op::Unary(UnaryOp::Sqrt), &[ve])?;
    let xhat = op(b, "normalized", Op::Binary(BinaryOp::Div), &[d, sd])?;
    let scale_b = op(b, "scale", Op::Reshape(Reshape { shape: bshape.clone() }), &[scale])?;
    let bias_b = op(b, "bias", Op::Reshape(Reshape { shape: bshape }), &[bias])?;
    let scaled = op(b, "scaled", Op::Binary(BinaryOp::Mul), &[xhat, scale_b])?;
    let y = b.node(name, Op::Binary(BinaryOp::Add), &[scaled, bias_b])?;
    // Running statistics.
    let mean_c = op(b, "mean_c", Op::Reshape(Reshape { shape: vec![c] }), &[mean])?;
    let var_c = op(b, "var_c", Op::Reshape(Reshape { shape: vec![c] }), &[var])?;
    let km = k(b, "momentum", m)?;
    let k1m = k(b, "one_minus_momentum", 1.0 - m)?;
    let one = k(b, "one", 1.0)?;
    let cm1 = op(b, "count_minus_1", Op::Binary(BinaryOp::Sub), &[cnt, one])?;
    let cm1 = op(b, "count_minus_1_at_least_1", Op::Unary(UnaryOp::Clip { min: 1.0, max: f32::INFINITY }), &[cm1])?;
    let unbias = op(b, "unbias", Op::Binary(BinaryOp::Div), &[cnt, cm1])?;
    let uvar = op(b, "unbiased_var", Op::Binary(BinaryOp::Mul), &[var_c, unbias])?;
    for (state, batch, tag) in [(rm, mean_c, "running_mean"), (rv, uvar, "running_var")] {
        let ValueKind::Param { slot } = *b.kind(state) else {
            return Err(EngineError::Unsupported(format!(
                "node `{name}`: its running statistics are computed, not stored"
            )));
        };
        let old = op(b, &format!("{tag}/old"), Op::Binary(BinaryOp::Mul), &[state, km])?;
        let new = op(b, &format!("{tag}/batch"), Op::Binary(BinaryOp::Mul), &[batch, k1m])?;
        let upd = op(b, &format!("{tag}/update"), Op::Binary(BinaryOp::Add), &[old, new])?;
        b.set_state_update(slot, upd);
    }
    Ok(y)
}
