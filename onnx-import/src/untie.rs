//! Weights an exporter merged because their initial values were equal.
//!
//! PyTorch's default exporter deduplicates initializers with equal values: a freshly initialised
//! `TransformerEncoderLayer` has `norm1` and `norm2` weights of ones, and its norms' biases and the
//! attention's output-projection bias are all zeros of one shape, so the file holds one tensor that
//! three layers read. Trained as it stands, those layers would share one parameter where the
//! framework trains three. An initializer of more than one value, all equal, that two or more
//! layers read as a weight (a normalization's scale, bias or running statistic, a Gemm, Conv or
//! ConvTranspose weight or bias, a MatMul's right operand, an operand of an Add) is split: every use
//! after the first reads an `Identity` of it, which the import makes a parameter of its own
//! ([`crate::trainable::aliases`]) and export writes as an initializer of its own. Weights tied in
//! the framework on purpose (an embedding table reused as the output projection) hold random
//! values, not one value, and stay tied.

use tract_onnx::pb;

use crate::tensor::ConstTensor;

/// Whether input `index` of an `op` node is a weight of a layer.
fn weight_input(op: &str, index: usize) -> bool {
    match op {
        "BatchNormalization"
        | "GroupNormalization"
        | "InstanceNormalization"
        | "LayerNormalization"
        | "RMSNormalization"
        | "Gemm"
        | "Conv"
        | "ConvTranspose" => index >= 1,
        "MatMul" => index == 1,
        "Add" => true,
        _ => false,
    }
}

fn uniform_float(t: &pb::TensorProto) -> bool {
    ConstTensor::from_proto(t).is_ok_and(|c| c.is_float && c.data.len() > 1 && c.data.windows(2).all(|w| w[0] == w[1]))
}

/// The name of the `k`-th extra use of `name`.
pub fn untied_name(name: &str, k: usize) -> String {
    format!("{name}.untied{k}")
}

/// Splits merged layer weights (see the module doc); returns the names split.
pub fn split_merged_weights(proto: &mut pb::ModelProto) -> Vec<String> {
    let Some(g) = proto.graph.as_mut() else { return Vec::new() };
    let merged: Vec<String> = g
        .initializer
        .iter()
        .filter(|t| uniform_float(t))
        .filter(|t| {
            let uses = g.node.iter().flat_map(|n| n.input.iter().enumerate().map(move |(k, i)| (n, k, i)));
            uses.filter(|(n, k, i)| **i == t.name && weight_input(&n.op_type, *k)).count() > 1
        })
        .map(|t| t.name.clone())
        .collect();
    let mut identities = Vec::new();
    for name in &merged {
        let mut k = 0;
        for n in g.node.iter_mut() {
            let op = n.op_type.clone();
            for (index, input) in n.input.iter_mut().enumerate() {
                if input != name || !weight_input(&op, index) {
                    continue;
                }
                if k > 0 {
                    let untied = untied_name(name, k);
                    identities.push(pb::NodeProto {
                        name: format!("untie_{untied}"),
                        op_type: "Identity".into(),
                        input: vec![name.clone()],
                        output: vec![untied.clone()],
                        ..Default::default()
                    });
                    *input = untied;
                }
                k += 1;
            }
        }
    }
    // An Identity of an initializer may come first: nothing it reads is computed.
    g.node.splice(0..0, identities);
    merged
}
