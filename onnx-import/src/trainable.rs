//! Which float initializers train. Exporters store more than weights as float initializers:
//! tf2onnx keeps scalar constants (an attention scale, a LayerNorm epsilon, gelu's constants, Pow
//! exponents) as initializers, and training those sends a small Keras transformer to NaN at its
//! first step. So a float initializer trains when it reaches (directly, or through Identity,
//! Transpose, Reshape, Cast, Squeeze, Unsqueeze, Flatten, Split or Slice, and into Loop and Scan
//! bodies) a weight input of a parametrised op:
//!
//! - MatMul/Gemm/Einsum operands and Gemm's C, Conv/ConvTranspose weights and biases;
//! - the bias added after one of those (an Add of the op's output, possibly reshaped first, as
//!   Keras' Dense on 3-D input is exported);
//! - normalisation scales and shifts (BatchNormalization, LayerNormalization,
//!   InstanceNormalization, GroupNormalization, RMSNormalization), not running statistics;
//! - LSTM/GRU/RNN `W`, `R`, `B` and peepholes; Gather tables (embeddings); PRelu slopes.
//!
//! Every other float initializer is frozen (kept as a non-trainable parameter, written back to the
//! trained model unchanged). `--trainable NAME` and `--frozen NAME` override the decision per
//! tensor; `inspect` shows it with its reason.

use std::collections::HashMap;

use serde::Serialize;
use tract_onnx::pb;

use crate::model::OnnxModel;
use crate::tensor::elem;

/// The decision for one float initializer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainDecision {
    /// The initializer's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Whether an optimizer updates it.
    pub trainable: bool,
    /// Whether training updates it otherwise (BatchNormalization's running statistics).
    pub state: bool,
    /// Why (the op input it reaches, or what it is instead, or the override).
    pub reason: String,
}

/// Ops a weight passes through unchanged in meaning.
const PASS_THROUGH: &[&str] =
    &["Identity", "Transpose", "Reshape", "Cast", "Squeeze", "Unsqueeze", "Flatten", "Split", "Slice"];

/// Ops whose output a bias may follow.
const BIASED: &[&str] = &["MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum"];

/// The weight inputs of a parametrised op (by position).
fn weight_inputs(op_type: &str) -> &'static [usize] {
    match op_type {
        "MatMul" => &[0, 1],
        "Gemm" => &[0, 1, 2],
        "Einsum" => &[0, 1, 2, 3],
        "Conv" | "ConvTranspose" => &[1, 2],
        "BatchNormalization" | "LayerNormalization" | "InstanceNormalization" | "GroupNormalization" => &[1, 2],
        "RMSNormalization" | "PRelu" => &[1],
        "LSTM" => &[1, 2, 3, 7],
        "GRU" | "RNN" => &[1, 2, 3],
        "Gather" => &[0],
        _ => &[],
    }
}

/// The tensor `name` is, through pass-through ops (an initializer's name when it is one).
fn source<'g>(producer: &HashMap<&'g str, &'g pb::NodeProto>, mut name: &'g str) -> &'g str {
    for _ in 0..64 {
        match producer.get(name) {
            Some(n) if PASS_THROUGH.contains(&n.op_type.as_str()) => match n.input.first() {
                Some(i) => name = i,
                None => break,
            },
            _ => break,
        }
    }
    name
}

/// Notes, in `reasons` and `state`, the tensors of the outermost graph that reach a weight (or a
/// running statistic) of `g`'s nodes, subgraphs included: a Loop's or Scan's body reads its
/// inputs from the node's (Keras 3 passes a GRU's kernels into its Loop as loop-carried values)
/// or from the outer scope by name; `outer` names the outermost tensor a name of `g` stands for.
fn collect(
    g: &pb::GraphProto,
    sizes: &HashMap<String, usize>,
    outer: &dyn Fn(&str) -> String,
    reasons: &mut HashMap<String, String>,
    state: &mut HashMap<String, String>,
) {
    let producer: HashMap<&str, &pb::NodeProto> =
        g.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    // A name of `g` as the outermost tensor it is (through pass-through ops).
    let resolve = |name: &str| -> String {
        let end = source(&producer, name);
        if producer.contains_key(end) { end.to_string() } else { outer(end) }
    };
    for n in &g.node {
        let label = if n.name.is_empty() { n.output.first().map_or("", String::as_str) } else { &n.name };
        for &i in weight_inputs(&n.op_type) {
            if let Some(input) = n.input.get(i).filter(|s| !s.is_empty()) {
                reasons.entry(resolve(input)).or_insert_with(|| format!("input {i} of {} `{label}`", n.op_type));
            }
        }
        if n.op_type == "BatchNormalization" {
            for i in [3, 4] {
                if let Some(input) = n.input.get(i).filter(|s| !s.is_empty()) {
                    state.entry(resolve(input)).or_insert_with(|| format!("input {i} of BatchNormalization `{label}`"));
                }
            }
        }
        if n.op_type == "Add"
            && let [a, b] = n.input.as_slice()
        {
            let made_by_layer = |name: &str| {
                producer.get(source(&producer, name)).is_some_and(|p| BIASED.contains(&p.op_type.as_str()))
            };
            for (input, other) in [(a, b), (b, a)] {
                if made_by_layer(other) {
                    reasons.entry(resolve(input)).or_insert_with(|| format!("the bias added by Add `{label}`"));
                }
            }
        }
        // A scale or shift of more than one value (a normalisation exported as primitive ops, as
        // tf2onnx writes Keras' LayerNormalization: `* gamma + beta`); single values are the
        // exporter's constants.
        if matches!(n.op_type.as_str(), "Mul" | "Add" | "Sub") {
            for input in &n.input {
                let end = resolve(input);
                if sizes.get(end.as_str()).is_some_and(|&len| len > 1) {
                    reasons.entry(end).or_insert_with(|| format!("a scale or shift of {} `{label}`", n.op_type));
                }
            }
        }
        // Subgraph inputs that stand for the node's inputs: a Loop's body (iteration, cond,
        // carried...) for (M, cond, carried...), a Scan's body input for its input of the same
        // position.
        for body in n.attribute.iter().flat_map(|a| a.g.iter().chain(&a.graphs)) {
            let bound: HashMap<&str, &str> = match n.op_type.as_str() {
                "Loop" | "Scan" => body
                    .input
                    .iter()
                    .zip(&n.input)
                    .filter(|(_, outer)| !outer.is_empty())
                    .map(|(b, o)| (b.name.as_str(), o.as_str()))
                    .collect(),
                _ => HashMap::new(),
            };
            collect(body, sizes, &|name| bound.get(name).map_or_else(|| resolve(name), |o| resolve(o)), reasons, state);
        }
    }
}

/// The decisions for every float initializer of `model`, before overrides.
pub fn decide(model: &OnnxModel) -> Vec<TrainDecision> {
    decide_graph(model.graph())
}

fn decide_graph(g: &pb::GraphProto) -> Vec<TrainDecision> {
    let mut reasons: HashMap<String, String> = HashMap::new();
    let mut state: HashMap<String, String> = HashMap::new();
    let sizes: HashMap<String, usize> = g
        .initializer
        .iter()
        .filter(|t| t.data_type == elem::FLOAT)
        .map(|t| (t.name.clone(), t.dims.iter().map(|&d| d.max(0) as usize).product()))
        .collect();
    collect(g, &sizes, &|name| name.to_string(), &mut reasons, &mut state);
    g.initializer
        .iter()
        .filter(|t| t.data_type == elem::FLOAT)
        .map(|t| {
            let shape = t.dims.iter().map(|&d| d.max(0) as usize).collect();
            match (reasons.get(t.name.as_str()), state.get(t.name.as_str())) {
                (Some(r), _) => {
                    TrainDecision { name: t.name.clone(), shape, trainable: true, state: false, reason: format!("trains: {r}") }
                }
                (None, Some(r)) => TrainDecision {
                    name: t.name.clone(),
                    shape,
                    trainable: false,
                    state: true,
                    reason: format!("state, updated by training steps, not by the optimizer: {r}"),
                },
                (None, None) => TrainDecision {
                    name: t.name.clone(),
                    shape,
                    trainable: false,
                    state: false,
                    reason: "frozen, a constant: not a weight of a parametrised op (the export stored it as an initializer); --trainable overrides".into(),
                },
            }
        })
        .collect()
}

/// [`decide`] with the overrides applied: `trainable` and `frozen` name float initializers.
pub fn decide_with(
    model: &OnnxModel,
    trainable: &[String],
    frozen: &[String],
) -> std::result::Result<Vec<TrainDecision>, String> {
    let mut out = decide(model);
    for (names, flag, make) in [(trainable, "--trainable", true), (frozen, "--frozen", false)] {
        for name in names {
            if trainable.contains(name) && frozen.contains(name) {
                return Err(format!("{name} is named by both --trainable and --frozen"));
            }
            let Some(d) = out.iter_mut().find(|d| &d.name == name) else {
                // An initializer's alias (an Identity of it) is a parameter of its own.
                if aliases(model).iter().any(|(alias, _)| alias == name) {
                    continue;
                }
                return Err(format!(
                    "{flag} {name}: the model has no float initializer of that name (`distk-gpu inspect` lists them)"
                ));
            };
            d.trainable = make;
            d.reason = format!("{} ({flag})", if make { "trains" } else { "frozen" });
        }
    }
    Ok(out)
}

/// The outputs of Identity nodes that copy a float initializer used more than once
/// (`(alias, initializer)`): the import makes each a parameter of its own, which export writes as
/// an initializer of its own. (An initializer used only through one Identity stays itself.)
pub fn aliases(model: &OnnxModel) -> Vec<(String, String)> {
    let g = model.graph();
    let uses = |name: &str| g.node.iter().flat_map(|n| n.input.iter()).filter(|i| *i == name).count();
    g.node
        .iter()
        .filter(|n| n.op_type == "Identity")
        .filter_map(|n| {
            let (input, output) = (n.input.first()?, n.output.first()?);
            let float = g.initializer.iter().any(|t| &t.name == input && t.data_type == elem::FLOAT);
            (float && uses(input) > 1).then(|| (output.clone(), input.clone()))
        })
        .collect()
}

/// The float initializers that stay parameters (trained, or state such as running statistics);
/// the others are constants of the import (they fold, and export leaves them as they are).
pub fn parameters(decisions: &[TrainDecision]) -> std::collections::HashSet<String> {
    decisions.iter().filter(|d| d.trainable || d.state).map(|d| d.name.clone()).collect()
}
