//! Which float initializers train. Exporters store more than weights as float initializers:
//! tf2onnx keeps scalar constants (an attention scale, a LayerNorm epsilon, gelu's constants, Pow
//! exponents) as initializers, and training those sends a small Keras transformer to NaN at its
//! first step. So a float initializer trains when it reaches (directly, or through Identity,
//! Transpose, Reshape, Cast, Squeeze, Unsqueeze or Flatten) a weight input of a parametrised op:
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
    /// Why (the op input it reaches, or what it is instead, or the override).
    pub reason: String,
}

/// Ops a weight passes through unchanged in meaning.
const PASS_THROUGH: &[&str] = &["Identity", "Transpose", "Reshape", "Cast", "Squeeze", "Unsqueeze", "Flatten"];

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

/// The decisions for every float initializer of `model`, before overrides.
pub fn decide(model: &OnnxModel) -> Vec<TrainDecision> {
    decide_graph(model.graph())
}

fn decide_graph<'g>(g: &'g pb::GraphProto) -> Vec<TrainDecision> {
    let producer: HashMap<&'g str, &'g pb::NodeProto> =
        g.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let source = |name: &'g str| source(&producer, name);
    let mut reasons: HashMap<&str, String> = HashMap::new();
    for n in &g.node {
        let label = if n.name.is_empty() { n.output.first().map_or("", String::as_str) } else { &n.name };
        for &i in weight_inputs(&n.op_type) {
            if let Some(input) = n.input.get(i).filter(|s| !s.is_empty()) {
                reasons.entry(source(input)).or_insert_with(|| format!("input {i} of {} `{label}`", n.op_type));
            }
        }
        if n.op_type == "Add" {
            let made_by_layer =
                |name: &'g str| producer.get(source(name)).is_some_and(|p| BIASED.contains(&p.op_type.as_str()));
            if let [a, b] = n.input.as_slice() {
                for (input, other) in [(a, b), (b, a)] {
                    if made_by_layer(other) {
                        reasons.entry(source(input)).or_insert_with(|| format!("the bias added by Add `{label}`"));
                    }
                }
            }
        }
    }
    g.initializer
        .iter()
        .filter(|t| t.data_type == elem::FLOAT)
        .map(|t| {
            let shape = t.dims.iter().map(|&d| d.max(0) as usize).collect();
            match reasons.get(t.name.as_str()) {
                Some(r) => TrainDecision { name: t.name.clone(), shape, trainable: true, reason: format!("trains: {r}") },
                None => TrainDecision {
                    name: t.name.clone(),
                    shape,
                    trainable: false,
                    reason: "frozen: not a weight of a parametrised op (a constant the export stored as an initializer); --trainable overrides".into(),
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
            let d = out.iter_mut().find(|d| &d.name == name).ok_or_else(|| {
                format!(
                    "{flag} {name}: the model has no float initializer of that name (`distk-gpu inspect` lists them)"
                )
            })?;
            if trainable.contains(name) && frozen.contains(name) {
                return Err(format!("{name} is named by both --trainable and --frozen"));
            }
            d.trainable = make;
            d.reason = format!("{} ({flag})", if make { "trains" } else { "frozen" });
        }
    }
    Ok(out)
}
