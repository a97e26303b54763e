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
            for s in &imported.graph.layout.slots {
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
    for n in missing_biases(model) {
        lost.push(format!(
            "{} `{}` has no bias (stock Keras exports fold zero biases away): `run --add-missing-biases` adds trainable zero biases",
            n.op_type, n.name
        ));
    }
    lost
}

/// The MatMul, Gemm and Conv nodes with no bias of their own and no Add of an initializer after them.
pub fn missing_biases(model: &OnnxModel) -> Vec<&tract_onnx::pb::NodeProto> {
    let g = model.graph();
    let is_init = |name: &str| g.initializer.iter().any(|t| t.name == name);
    g.node
        .iter()
        .filter(|n| n.op_type == "MatMul" || n.op_type == "Conv" || n.op_type == "Gemm")
        .filter(|n| {
            let has_own_bias =
                (n.op_type == "Conv" || n.op_type == "Gemm") && n.input.get(2).is_some_and(|s| !s.is_empty());
            let Some(out) = n.output.first() else { return false };
            let followed_by_bias = g.node.iter().any(|m| {
                m.op_type == "Add" && m.input.iter().any(|i| i == out) && m.input.iter().any(|i| i != out && is_init(i))
            });
            !has_own_bias && !followed_by_bias
        })
        .collect()
}

/// The name of the bias `--add-missing-biases` gives the node writing `output`.
pub fn added_bias_name(output: &str) -> String {
    format!("{output}/distk_bias")
}
