//! A model with an int64 input (token ids) and an embedding table, as PyTorch and Keras export
//! `Embedding`: `Gather(table, ids) -> ReduceMean -> Gemm -> Softmax`. Trained end to end from a
//! Parquet file of integer token lists with `distk-gpu run` on the CPU and the WGSL executor (the
//! table's gradient is the Gather's scatter-add), evaluated, and the exported model read back by
//! tract, which must agree with the engine's predictions on the same ids.

mod common;

use common::onnx_pb::{attr_i, attr_ints, node, tensor, value};

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use prost::Message;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tract_onnx::pb;
use tract_onnx::prelude::*;

const VOCAB: usize = 20;
const TOKENS: usize = 8;
const DIM: usize = 8;

fn distk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distk-gpu")).args(args).output().expect("run distk-gpu")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The embedding classifier, with small random initial weights.
fn embedding_model() -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut w = |n: usize| (0..n).map(|_| rng.random_range(-0.1f32..0.1)).collect::<Vec<f32>>();
    let graph = pb::GraphProto {
        name: "embedding".into(),
        node: vec![
            node("Gather", &["table", "ids"], "emb", vec![attr_i("axis", 0)]),
            node("ReduceMean", &["emb"], "mean", vec![attr_ints("axes", &[1]), attr_i("keepdims", 0)]),
            node("Gemm", &["mean", "w", "b"], "logits", vec![]),
            node("Softmax", &["logits"], "probs", vec![attr_i("axis", -1)]),
        ],
        initializer: vec![
            tensor("table", &[VOCAB as i64, DIM as i64], w(VOCAB * DIM)),
            tensor("w", &[DIM as i64, 2], w(DIM * 2)),
            tensor("b", &[2], vec![0.0, 0.0]),
        ],
        input: vec![value("ids", 7, &[None, Some(TOKENS as i64)])],
        output: vec![value("probs", 1, &[None, Some(2)])],
        ..Default::default()
    };
    let m = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
        producer_name: "distk-test".into(),
        graph: Some(graph),
        ..Default::default()
    };
    m.encode_to_vec()
}

/// `rows` token lists (int64 ids in [0, VOCAB)); the label says whether at least half the tokens
/// are below VOCAB / 2: a mean of embeddings and a linear layer can learn it exactly.
fn token_rows(rows: usize, seed: u64) -> (Vec<Vec<i64>>, Vec<i64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids: Vec<Vec<i64>> =
        (0..rows).map(|_| (0..TOKENS).map(|_| rng.random_range(0..VOCAB as i64)).collect()).collect();
    let labels =
        ids.iter().map(|r| i64::from(r.iter().filter(|&&t| t < (VOCAB / 2) as i64).count() * 2 >= TOKENS)).collect();
    (ids, labels)
}

fn write_parquet(path: &Path, ids: &[Vec<i64>], labels: &[i64]) {
    use arrow_array::builder::{Int64Builder, ListBuilder};
    let mut feats = ListBuilder::new(Int64Builder::new());
    for r in ids {
        feats.values().append_slice(r);
        feats.append(true);
    }
    let cols: Vec<(&str, arrow_array::ArrayRef)> = vec![
        ("features", Arc::new(feats.finish())),
        ("label", Arc::new(arrow_array::Int64Array::from(labels.to_vec()))),
    ];
    let batch = arrow_array::RecordBatch::try_from_iter(cols).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn an_embedding_over_int64_token_ids_trains_on_both_executors_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("embedding.onnx");
    std::fs::write(&model, embedding_model()).unwrap();
    let (train_ids, train_labels) = token_rows(1024, 1);
    let (test_ids, test_labels) = token_rows(256, 2);
    let train = dir.path().join("train.parquet");
    let test = dir.path().join("test.parquet");
    write_parquet(&train, &train_ids, &train_labels);
    write_parquet(&test, &test_ids, &test_labels);
    let before = common::evaluate_json(&model, &test, "cpu");
    for device in ["cpu", "wgpu"] {
        let out = dir.path().join(format!("trained-{device}.onnx"));
        ok(&distk(&[
            "run",
            model.to_str().unwrap(),
            "--data",
            train.to_str().unwrap(),
            "--epochs",
            "20",
            "--learning-rate",
            "0.05",
            "--device",
            device,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]));
        let after = common::evaluate_json(&out, &test, device);
        let acc = after["accuracy"].as_f64().unwrap();
        assert!(acc >= 0.95, "{device}: accuracy {acc} after training (before: {before})");
        // tract reads the exported model (int64 input kept) and agrees with the engine.
        let plan = tract_onnx::onnx()
            .model_for_path(&out)
            .unwrap()
            .with_input_fact(0, i64::fact([4, TOKENS]).into())
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let flat: Vec<i64> = test_ids[..4].iter().flatten().copied().collect();
        let res = plan.run(tvec!(Tensor::from_shape(&[4, TOKENS], &flat).unwrap().into())).unwrap();
        let tract_probs: Vec<f32> = res[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
        let correct = test_labels[..4]
            .iter()
            .enumerate()
            .filter(|&(i, &l)| (tract_probs[2 * i + 1] > tract_probs[2 * i]) == (l == 1))
            .count();
        assert!(
            correct >= 3,
            "{device}: tract's predictions of the export: {tract_probs:?} for {:?}",
            &test_labels[..4]
        );
    }
    // Ids outside the int64 range the engine holds exactly, or fractional ids, are refused clearly.
    let bad = dir.path().join("bad.parquet");
    let mut ids = test_ids[..2].to_vec();
    ids[1][3] = 1 << 30;
    write_parquet(&bad, &ids, &test_labels[..2]);
    let o = distk(&["evaluate", model.to_str().unwrap(), "--data", bad.to_str().unwrap(), "--device", "cpu"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ids") && err.contains("2^24"), "{err}");
}
