//! `inspect`: what a model is, what it needs, and what its export lost for training.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::coverage::unsupported_ops;
use crate::error::Result;
use crate::model::OnnxModel;
use crate::pipeline::import;

/// A trainable tensor.
#[derive(Clone, Debug, Serialize)]
pub struct TrainableTensor {
    /// The initializer's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// One unsupported op type, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct UnsupportedEntry {
    /// The op type.
    pub op_type: String,
    /// How many nodes.
    pub count: usize,
    /// Some node names.
    pub nodes: Vec<String>,
    /// Why, when the op is known but not at the model's opset.
    pub opset: Option<String>,
}

/// Everything `distk-gpu inspect` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    /// The file.
    pub path: String,
    /// Producer and version as the file records them.
    pub producer: String,
    /// ONNX IR version.
    pub ir_version: i64,
    /// Default-domain opset.
    pub opset: i64,
    /// Inputs: name and declared shape.
    pub inputs: Vec<(String, String)>,
    /// Outputs: name and declared shape.
    pub outputs: Vec<(String, String)>,
    /// Node count per op type.
    pub op_counts: BTreeMap<String, usize>,
    /// Node names in order (for `--dropout NODE=RATE`).
    pub nodes: Vec<String>,
    /// Number of parameter values.
    pub parameter_count: usize,
    /// Bytes of parameters (f32).
    pub parameter_bytes: usize,
    /// The tensors an optimizer updates.
    pub trainable: Vec<TrainableTensor>,
    /// Every float initializer: whether it trains, and why ([`crate::trainable`]).
    pub initializers: Vec<crate::trainable::TrainDecision>,
    /// What the export lost for training, each with its remedy.
    pub lost_for_training: Vec<String>,
    /// Ops the importer cannot convert.
    pub unsupported: Vec<UnsupportedEntry>,
    /// Why the model does not import at batch size 1, when it does not.
    pub import_error: Option<String>,
}

/// Builds the report of a model.
pub fn inspect(model: &OnnxModel) -> Result<ModelReport> {
    let g = model.graph();
    let mut op_counts = BTreeMap::new();
    for n in &g.node {
        *op_counts.entry(n.op_type.clone()).or_insert(0) += 1;
    }
    let inputs = model.inputs()?.iter().map(|s| (s.name.clone(), s.display())).collect();
    let outputs = model.outputs()?.iter().map(|s| (s.name.clone(), s.display())).collect();
    let unsupported: Vec<UnsupportedEntry> = unsupported_ops(model)
        .into_iter()
        .map(|u| UnsupportedEntry { op_type: u.op_type, count: u.count, nodes: u.nodes, opset: u.opset })
        .collect();
    let (mut trainable, mut import_error) = (Vec::new(), None);
    match import(model, 1) {
        Ok(imported) => {
            for s in imported.graph.layout.slots.iter().filter(|s| s.trainable) {
                trainable.push(TrainableTensor { name: s.name.clone(), shape: s.shape.clone() });
            }
        }
        Err(e) => import_error = Some(e.to_string()),
    }
    let parameter_count = trainable.iter().map(|t| t.shape.iter().product::<usize>()).sum();
    Ok(ModelReport {
        path: model.path.clone(),
        producer: format!("{} {}", model.proto.producer_name, model.proto.producer_version).trim().to_string(),
        ir_version: model.proto.ir_version,
        opset: model.opset,
        inputs,
        outputs,
        op_counts,
        nodes: g.node.iter().map(|n| n.name.clone()).collect(),
        parameter_count,
        parameter_bytes: parameter_count * 4,
        trainable,
        initializers: crate::trainable::decide(model),
        lost_for_training: lost_for_training(model),
        unsupported,
        import_error,
    })
}

/// What an inference export lost that training needs.
fn lost_for_training(model: &OnnxModel) -> Vec<String> {
    let g = model.graph();
    let mut lost = Vec::new();
    for n in g.node.iter().filter(|n| n.op_type == "BatchNormalization") {
        lost.push(format!(
            "BatchNormalization `{}` is in inference form (running statistics only): training uses batch statistics and updates the running ones (momentum from --bn-momentum, default 0.99 as in Keras)",
            n.name
        ));
    }
    if !g.node.iter().any(|n| n.op_type == "Dropout") {
        lost.push("no Dropout nodes: exports drop Dropout; re-insert one with `run --dropout NODE=RATE`".into());
    }
    let has_bn = g.node.iter().any(|n| n.op_type == "BatchNormalization");
    let mentions_bn = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("batch_norm") || s.contains("batchnorm") || s.contains("/bn")
    };
    let bn_named = g.node.iter().any(|n| mentions_bn(&n.name)) || g.initializer.iter().any(|t| mentions_bn(&t.name));
    if !has_bn && bn_named {
        lost.push(
            "BatchNormalization was folded into the layers before it (names mention it, no BatchNormalization node is left): training will not normalise batches; export Keras models with tf_keras + tf2onnx, PyTorch ones in training mode (`torch.onnx.export(..., training=torch.onnx.TrainingMode.TRAINING)`), to keep it".into(),
        );
    }
    for n in missing_biases(model) {
        lost.push(format!(
            "{} `{}` has no bias (stock Keras exports fold zero biases away): `run --add-missing-biases` adds trainable zero biases",
            n.op_type, n.name
        ));
    }
    lost
}

/// Ops a bias may come after without changing what it biases (Keras' Dense on 3-D input reshapes
/// between its MatMul and its bias).
const BIAS_PASS_THROUGH: &[&str] = &["Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten", "Transpose"];

/// The layers with no bias: MatMul, Gemm and Conv nodes with a weight (an initializer, possibly
/// through Identity/Transpose/Reshape/Cast), no bias of their own and no Add of an initializer
/// after them (directly or through reshapes). A MatMul of two activations (attention's scores) is
/// not a layer.
pub fn missing_biases(model: &OnnxModel) -> Vec<&tract_onnx::pb::NodeProto> {
    let g = model.graph();
    let is_init = |name: &str| g.initializer.iter().any(|t| t.name == name);
    let from_init = |start: &str| {
        let mut name = start.to_string();
        for _ in 0..16 {
            if is_init(&name) {
                return true;
            }
            match g.node.iter().find(|n| n.output.contains(&name)) {
                Some(p) if ["Identity", "Transpose", "Reshape", "Cast"].contains(&p.op_type.as_str()) => {
                    match p.input.first() {
                        Some(i) => name = i.clone(),
                        None => return false,
                    }
                }
                _ => return false,
            }
        }
        false
    };
    let followed_by_bias = |out: &str| {
        let mut frontier = vec![out.to_string()];
        for _ in 0..8 {
            let mut next = Vec::new();
            for t in &frontier {
                for m in g.node.iter().filter(|m| m.input.iter().any(|i| i == t)) {
                    if m.op_type == "Add" && m.input.iter().any(|i| i != t && is_init(i)) {
                        return true;
                    }
                    if BIAS_PASS_THROUGH.contains(&m.op_type.as_str()) {
                        next.extend(m.output.iter().cloned());
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            frontier = next;
        }
        false
    };
    g.node
        .iter()
        .filter(|n| n.op_type == "MatMul" || n.op_type == "Conv" || n.op_type == "Gemm")
        .filter(|n| {
            let weighted = match n.op_type.as_str() {
                "MatMul" => n.input.iter().any(|i| from_init(i)),
                _ => n.input.get(1).is_some_and(|i| from_init(i)),
            };
            let has_own_bias =
                (n.op_type == "Conv" || n.op_type == "Gemm") && n.input.get(2).is_some_and(|s| !s.is_empty());
            let Some(out) = n.output.first() else { return false };
            weighted && !has_own_bias && !followed_by_bias(out)
        })
        .collect()
}

/// The name of the bias `--add-missing-biases` gives the node writing `output`.
pub fn added_bias_name(output: &str) -> String {
    format!("{output}/distk_bias")
}
