//! Input that is wrong but looks right (issue 16): a model whose input declares a fixed batch
//! other than `--batch-size` gets one clear error naming the input, its shape and the way out,
//! instead of rows cut into the wrong shape.

mod common;

use std::process::Command;

use common::onnx_pb::{node, tensor, value};
use common::{data, root};
use prost::Message;
use tract_onnx::pb;

/// A softmax regression on the digits' 64 features whose input is declared `[4, 64]`: what a
/// PyTorch export traced with a batch of 4 and no dynamic axis looks like.
fn fixed_batch_model() -> Vec<u8> {
    let graph = pb::GraphProto {
        name: "fixed-batch".into(),
        node: vec![node("Gemm", &["x", "w", "b"], "logits", vec![]), node("Softmax", &["logits"], "probs", vec![])],
        initializer: vec![tensor("w", &[64, 10], vec![0.01; 640]), tensor("b", &[10], vec![0.0; 10])],
        input: vec![value("x", 1, &[Some(4), Some(64)])],
        output: vec![value("probs", 1, &[Some(4), Some(10)])],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
        producer_name: "distk-test".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn a_fixed_batch_other_than_the_batch_size_is_refused_naming_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("fixed.onnx");
    std::fs::write(&model, fixed_batch_model()).unwrap();
    let test = data("digits_test.parquet");
    let run = |batch: &str, workers: &str| {
        Command::new(env!("CARGO_BIN_EXE_distk-gpu"))
            .current_dir(root())
            .arg("run")
            .arg(&model)
            .arg("--data")
            .arg(&test)
            .args(["--batch-size", batch, "--workers", workers, "--device", "cpu", "--quiet", "--out"])
            .arg(dir.path().join(format!("out-{batch}-{workers}.onnx")))
            .output()
            .unwrap()
    };
    for workers in ["1", "2"] {
        let o = run("32", workers);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("input `x` has a fixed batch of 4 (shape [4, 64]) but --batch-size is 32")
                && err.contains("--batch-size 4")
                && err.contains("dynamic_axes"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
    }
    // The way out works: the model's own batch trains, on one worker and on two.
    for workers in ["1", "2"] {
        let o = run("4", workers);
        assert!(o.status.success(), "{workers} workers: {}", String::from_utf8_lossy(&o.stderr));
    }
    // Prediction and evaluation take rows in batches of any size: refused up front, clearly.
    for cmd in ["evaluate", "predict"] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_distk-gpu"));
        c.arg(cmd).arg(&model).arg("--data").arg(&test).args(["--device", "cpu"]);
        if cmd == "predict" {
            c.arg("--out").arg(dir.path().join("p.parquet"));
        }
        let o = c.output().unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("fixed batch of 4") && err.contains("dynamic batch axis"), "{cmd}: {err}");
        assert!(!dir.path().join("p.parquet").exists());
    }
}
