//! Which float initializers train (`distk_onnx::trainable`): the weights of parametrised ops and
//! the biases after them train; the constants tf2onnx stores as initializers (scales, exponents,
//! epsilons) stay frozen and keep their values through training; `trainable`/`frozen` override.

mod common;

use common::*;
use distk_onnx::{ImportOptions, OnnxModel, import_with};

/// A transformer-ish block as tf2onnx writes one: a Dense on 3-D input (MatMul, Reshape, then the
/// bias), a scale and a Pow exponent as scalar initializers, a LayerNormalization and an embedding
/// table read by Gather.
fn block() -> OnnxModel {
    let nodes = vec![
        node("MatMul", &["x", "w_t"], "m", vec![]),
        node("Reshape", &["m", "shape"], "r", vec![]),
        node("Add", &["r", "bias"], "d", vec![]),
        node("Mul", &["d", "scale"], "s", vec![]),
        node("Pow", &["s", "two"], "p", vec![]),
        node("LayerNormalization", &["p", "gamma", "beta"], "n", vec![attr_i("axis", -1)]),
        node("Gather", &["table", "ids"], "e", vec![attr_i("axis", 0)]),
        node("Add", &["n", "e"], "y", vec![]),
    ];
    let inits = vec![
        f32_tensor("w", &[4, 3], &weights(12, 1)),
        f32_tensor("bias", &[3], &[0.1, 0.2, 0.3]),
        f32_tensor("scale", &[], &[0.125]),
        f32_tensor("two", &[], &[2.0]),
        f32_tensor("gamma", &[3], &[1.0, 1.0, 1.0]),
        f32_tensor("beta", &[3], &[0.0, 0.0, 0.0]),
        f32_tensor("table", &[5, 3], &weights(15, 2)),
        i64_tensor("ids", &[4]),
        i64_tensor("shape", &[0, 2, 3]),
    ];
    let mut nodes_with_identity = vec![node("Identity", &["w"], "w_t", vec![])];
    nodes_with_identity.extend(nodes);
    OnnxModel::from_bytes(model(17, &[2, 4], nodes_with_identity, inits), "block").expect("a model")
}

fn trained(options: &ImportOptions) -> Vec<String> {
    let g = import_with(&block(), 2, options).expect("imports").graph;
    g.layout.slots.iter().filter(|s| s.trainable).map(|s| s.name.clone()).collect()
}

#[test]
fn weights_train_and_constants_stay_frozen() {
    let decisions = distk_onnx::trainable::decide(&block());
    let of = |name: &str| decisions.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("{name} decided"));
    for name in ["w", "bias", "gamma", "beta", "table"] {
        assert!(of(name).trainable, "{name} should train: {}", of(name).reason);
    }
    for name in ["scale", "two"] {
        assert!(!of(name).trainable, "{name} should be frozen: {}", of(name).reason);
    }
    assert!(of("w").reason.contains("MatMul"), "{}", of("w").reason);
    assert!(of("bias").reason.contains("bias"), "{}", of("bias").reason);
    let mut got = trained(&ImportOptions::default());
    got.sort();
    assert_eq!(got, ["beta", "bias", "gamma", "table", "w"]);
}

#[test]
fn overrides_train_or_freeze_by_name() {
    let options = ImportOptions { trainable: vec!["scale".into()], frozen: vec!["table".into()], ..Default::default() };
    let mut got = trained(&options);
    got.sort();
    assert_eq!(got, ["beta", "bias", "gamma", "scale", "w"]);
    let unknown = ImportOptions { frozen: vec!["nope".into()], ..Default::default() };
    let err = import_with(&block(), 2, &unknown).expect_err("an unknown name is refused").to_string();
    assert!(err.contains("--frozen nope") && err.contains("inspect"), "{err}");
    let both = ImportOptions { trainable: vec!["w".into()], frozen: vec!["w".into()], ..Default::default() };
    let err = import_with(&block(), 2, &both).expect_err("a name in both lists is refused").to_string();
    assert!(err.contains("both"), "{err}");
}

/// PyTorch's default exporter merges equal initializers: two LayerNorms' default weights (ones)
/// and biases (zeros) become one pair. Each layer trains its own again; a weight of random values
/// read by two layers (tied on purpose) stays one parameter.
#[test]
fn merged_default_weights_are_untied_and_tied_random_weights_stay_tied() {
    let nodes = vec![
        node("MatMul", &["x", "w"], "a", vec![]),
        node("LayerNormalization", &["a", "gamma", "beta"], "n1", vec![attr_i("axis", -1)]),
        node("MatMul", &["n1", "w"], "b", vec![]),
        node("LayerNormalization", &["b", "gamma", "beta"], "y", vec![attr_i("axis", -1)]),
    ];
    let inits = vec![
        f32_tensor("w", &[4, 4], &weights(16, 3)),
        f32_tensor("gamma", &[4], &[1.0; 4]),
        f32_tensor("beta", &[4], &[0.0; 4]),
    ];
    let m = OnnxModel::from_bytes(model(17, &[2, 4], nodes, inits), "merged").expect("a model");
    let g = import_with(&m, 2, &ImportOptions::default()).expect("imports").graph;
    let mut got: Vec<String> = g.layout.slots.iter().filter(|s| s.trainable).map(|s| s.name.clone()).collect();
    got.sort();
    assert_eq!(got, ["beta", "beta.untied1", "gamma", "gamma.untied1", "w"]);
    // Export writes the untied pair as initializers of their own, read by the second LayerNorm.
    let untied = OnnxModel::from_bytes(m.bytes.clone(), "again").expect("the rewritten bytes load");
    let second = untied.graph().node.iter().filter(|n| n.op_type == "LayerNormalization").nth(1).expect("two norms");
    assert_eq!(second.input[1..], ["gamma.untied1", "beta.untied1"]);
}
