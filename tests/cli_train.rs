//! `distk-gpu run` and `evaluate` end to end on the bundled data: accuracy reached through the WGSL
//! executor (lavapipe in CI), the exported model read back by tract with the engine's predictions,
//! history files, checkpoint and resume, and bad training input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{data, model};
use tract_onnx::prelude::*;

fn distk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distk-gpu")).args(args).output().expect("run distk-gpu")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn evaluate(m: &Path, d: &str) -> serde_json::Value {
    common::evaluate_json(m, &data(d), "auto")
}

#[test]
fn keras_mlp_learns_digits_on_the_wgsl_executor_and_tract_agrees_with_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trained.onnx");
    let hist = dir.path().join("history.json");
    let csv = dir.path().join("history.csv");
    ok(&distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        data("digits_train.parquet").to_str().unwrap(),
        "--validation-data",
        data("digits_test.parquet").to_str().unwrap(),
        "--epochs",
        "30",
        "--shuffle",
        "--seed",
        "3",
        "--device",
        "wgpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
        "--history-csv",
        csv.to_str().unwrap(),
    ]));
    let e = evaluate(&out, "digits_test.parquet");
    assert!(e["accuracy"].as_f64().unwrap() >= 0.96, "{e}");
    assert_eq!(e["rows"], 360);
    let h: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&hist).unwrap()).unwrap();
    let steps = h["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 30 * 1437usize.div_ceil(32), "every row trained, the partial batch included");
    for k in ["step", "epoch", "loss", "accuracy", "time"] {
        assert!(steps[0].get(k).is_some(), "step records have `{k}`");
    }
    let epochs = h["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 30);
    assert!(epochs[29]["val_accuracy"].as_f64().unwrap() >= 0.96);
    assert!(epochs[29]["loss"].as_f64().unwrap() < epochs[0]["loss"].as_f64().unwrap());
    assert!(std::fs::read_to_string(&csv).unwrap().starts_with("kind,step,epoch,loss,accuracy"));

    // tract reads the exported file and predicts what the engine predicts.
    let preds = dir.path().join("p.parquet");
    ok(&distk(&[
        "predict",
        out.to_str().unwrap(),
        "--data",
        data("digits_test.parquet").to_str().unwrap(),
        "--out",
        preds.to_str().unwrap(),
        "--device",
        "cpu",
        "--batch-size",
        "8",
    ]));
    let oracle = common::read_npz(&common::root().join("tests/fixtures/oracles/forward/keras_mlp.npz"));
    let x = oracle["input_data"].f32s();
    let plan = tract_onnx::onnx()
        .model_for_path(&out)
        .unwrap()
        .with_input_fact(0, f32::fact([4, 64]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let t = plan.run(tvec!(Tensor::from_shape(&[4, 64], &x).unwrap().into())).unwrap();
    let tract: Vec<f32> = t[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    let m = distk_onnx::OnnxModel::load(&out).unwrap();
    let g = distk_onnx::import(&m, 4).unwrap().graph;
    use distk_engine::Executor;
    let ours = distk_engine::cpu::CpuExecutor::new(g).run(&[&x]).unwrap().remove(0);
    assert!(common::rel_max_err(&ours, &tract) <= 1e-5, "tract disagrees with the engine on the exported model");
    assert!(
        common::rel_max_err(&tract, &oracle["output_data"].f32s()) > 1e-3,
        "the export carries trained, not initial, weights"
    );
}

#[test]
fn keras_cnn_learns_mnist_small_on_the_wgsl_executor() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn.onnx");
    ok(&distk(&[
        "run",
        model("keras_cnn.onnx").to_str().unwrap(),
        "--data",
        data("mnist_small_train.parquet").to_str().unwrap(),
        "--epochs",
        "2",
        "--shuffle",
        "--device",
        "wgpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    let e = evaluate(&out, "mnist_small_test.parquet");
    assert!(e["accuracy"].as_f64().unwrap() >= 0.95, "{e}");
}

#[test]
fn resuming_from_a_checkpoint_continues_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let common_args = |out: &Path| {
        vec![
            "run".to_string(),
            model("keras_mlp.onnx").display().to_string(),
            "--data".into(),
            data("digits_train.parquet").display().to_string(),
            "--shuffle".into(),
            "--device".into(),
            "cpu".into(),
            "--quiet".into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let straight = d.join("straight.onnx");
    let mut a = common_args(&straight);
    a.extend(["--epochs".into(), "3".into()]);
    ok(&distk(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    let ck = d.join("ck");
    let first = d.join("first.onnx");
    let mut a = common_args(&first);
    a.extend([
        "--epochs".into(),
        "1".into(),
        "--checkpoint-dir".into(),
        ck.display().to_string(),
        "--checkpoint-every".into(),
        "7".into(),
    ]);
    ok(&distk(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    let resumed = d.join("resumed.onnx");
    let mut a = common_args(&resumed);
    a.extend(["--epochs".into(), "3".into(), "--checkpoint-dir".into(), ck.display().to_string(), "--resume".into()]);
    ok(&distk(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(
        std::fs::read(&straight).unwrap(),
        std::fs::read(&resumed).unwrap(),
        "resumed run equals the straight run"
    );
}

#[test]
fn bad_training_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.onnx");
    let csv = std::fs::read_to_string(data("digits_test.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    let last = lines[5].rfind(',').unwrap();
    lines[5] = format!("{},12", &lines[5][..last]);
    let bad = dir.path().join("bad_labels.csv");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let m = model("keras_mlp.onnx");
    for (args, needle) in [
        (vec!["--data", bad.to_str().unwrap()], "row 4, column `label`: label 12 is outside the model's 10 classes"),
        (
            vec!["--data", data("digits_test.parquet").to_str().unwrap(), "--optimizer", "lion"],
            "unknown optimizer `lion`",
        ),
        (
            vec!["--data", data("digits_test.parquet").to_str().unwrap(), "--label-col", "target"],
            "has no column `target`",
        ),
        (
            vec!["--data", data("digits_test.parquet").to_str().unwrap(), "--optimizer-args", "momentum"],
            "is not key=value",
        ),
        (vec!["--data", data("digits_test.parquet").to_str().unwrap(), "--resume"], "--resume needs --checkpoint-dir"),
    ] {
        let mut a = vec!["run", m.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
        a.extend(args);
        let o = distk(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(needle), "expected `{needle}`: {err}");
        assert!(!out.exists());
    }
}

#[test]
fn added_biases_are_trained_and_written_into_the_stock_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn_biased.onnx");
    ok(&distk(&[
        "run",
        model("keras_cnn.stock.onnx").to_str().unwrap(),
        "--data",
        data("mnist_small_test.parquet").to_str().unwrap(),
        "--add-missing-biases",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    let report: serde_json::Value =
        serde_json::from_str(&ok(&distk(&["inspect", out.to_str().unwrap(), "--json"]))).unwrap();
    assert_eq!(report["parameter_count"], 34826, "the stock CNN regains its 106 bias values");
    let lost = report["lost_for_training"].as_array().unwrap();
    assert!(!lost.iter().any(|l| l.as_str().unwrap().contains("has no bias")), "{lost:?}");
    // The biases moved, and tract reads the rewritten graph with the engine's predictions.
    let m = distk_onnx::OnnxModel::load(&out).unwrap();
    let g = distk_onnx::import(&m, 4).unwrap().graph;
    let bias = g.layout.slots.iter().find(|s| s.name.ends_with("distk_bias")).unwrap();
    assert!(g.initial_params[bias.offset..bias.offset + bias.len].iter().any(|&v| v != 0.0));
    let oracle = common::read_npz(&common::root().join("tests/fixtures/oracles/forward/keras_cnn.stock.npz"));
    let x = oracle["input_data"].f32s();
    use distk_engine::Executor;
    let ours = distk_engine::cpu::CpuExecutor::new(g).run(&[&x]).unwrap().remove(0);
    let plan = tract_onnx::onnx()
        .model_for_path(&out)
        .unwrap()
        .with_input_fact(0, f32::fact([4, 28, 28, 1]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let t = plan.run(tvec!(Tensor::from_shape(&[4, 28, 28, 1], &x).unwrap().into())).unwrap();
    let tract: Vec<f32> = t[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    assert!(common::rel_max_err(&ours, &tract) <= 1e-5);
}

#[test]
fn one_hot_label_lists_train_with_categorical_crossentropy() {
    use arrow_array::builder::{Float32Builder, ListBuilder};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    // Digits with one-hot label lists.
    let mut reader = distk_gpu::data::DataReader::open(
        &data("digits_train.parquet"),
        &distk_gpu::data::FeatureColumns::parse("features"),
        Some("label"),
        4096,
    )
    .unwrap();
    let rows = reader.next_rows().unwrap().unwrap();
    let mut feats = ListBuilder::new(Float32Builder::new());
    let mut onehot = ListBuilder::new(Float32Builder::new());
    for (r, &l) in rows.labels.unwrap().iter().enumerate() {
        feats.values().append_slice(&rows.features[r * 64..(r + 1) * 64]);
        feats.append(true);
        let mut t = [0.0f32; 10];
        t[l as usize] = 1.0;
        onehot.values().append_slice(&t);
        onehot.append(true);
    }
    let cols: Vec<(&str, arrow_array::ArrayRef)> =
        vec![("features", Arc::new(feats.finish())), ("target", Arc::new(onehot.finish()))];
    let batch = arrow_array::RecordBatch::try_from_iter(cols).unwrap();
    let path = dir.path().join("digits_onehot.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let out = dir.path().join("m.onnx");
    let hist = dir.path().join("h.json");
    ok(&distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        path.to_str().unwrap(),
        "--label-col",
        "target",
        "--epochs",
        "15",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ]));
    let e = evaluate(&out, "digits_test.parquet");
    assert!(e["accuracy"].as_f64().unwrap() >= 0.9, "{e}");
    // The same loss on the one-hot file.
    let o = ok(&distk(&[
        "evaluate",
        out.to_str().unwrap(),
        "--data",
        path.to_str().unwrap(),
        "--label-col",
        "target",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(o.trim()).unwrap();
    assert!(v["accuracy"].as_f64().unwrap() >= 0.9, "{v}");
    // A loss that does not fit the labels is refused: MSE against 10 outputs needs 10 targets a row.
    let bad = distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        data("digits_test.parquet").to_str().unwrap(),
        "--loss",
        "mean_squared_error",
        "--quiet",
        "--out",
        dir.path().join("x.onnx").to_str().unwrap(),
    ]);
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("choose a loss that fits the labels")
    );
}

#[test]
fn plots_are_drawn_as_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["curves.png", "curves.svg"] {
        let plot = dir.path().join(name);
        ok(&distk(&[
            "run",
            model("keras_mlp.onnx").to_str().unwrap(),
            "--data",
            data("digits_train.parquet").to_str().unwrap(),
            "--validation-data",
            data("digits_test.parquet").to_str().unwrap(),
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            dir.path().join("m.onnx").to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
        ]));
        let bytes = std::fs::read(&plot).unwrap();
        if name.ends_with("png") {
            assert_eq!(&bytes[1..4], b"PNG");
        } else {
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.contains("<svg") && text.contains("loss per epoch"), "{}", &text[..200.min(text.len())]);
        }
    }
    let o = distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        data("digits_train.parquet").to_str().unwrap(),
        "--plot",
        "x.jpg",
        "--quiet",
        "--out",
        dir.path().join("n.onnx").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("must end in .png or .svg"));
}

#[test]
fn ctrl_c_ends_the_run_cleanly_and_keeps_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let hist = dir.path().join("h.json");
    let child = Command::new(env!("CARGO_BIN_EXE_distk-gpu"))
        .args([
            "run",
            model("keras_mlp.onnx").to_str().unwrap(),
            "--data",
            data("digits_train.parquet").to_str().unwrap(),
            "--epochs",
            "100000",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            "--history",
            hist.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("interrupted: the model and history so far were written"), "{err}");
    let h: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&hist).unwrap()).unwrap();
    assert_eq!(h["stopped"], "interrupted");
    assert!(!h["steps"].as_array().unwrap().is_empty());
    assert!(evaluate(&out, "digits_test.parquet")["accuracy"].as_f64().unwrap() > 0.5);
}

#[test]
fn training_stops_when_the_target_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("h.json");
    ok(&distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        data("digits_train.parquet").to_str().unwrap(),
        "--validation-data",
        data("digits_test.parquet").to_str().unwrap(),
        "--epochs",
        "200",
        "--target-accuracy",
        "0.9",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        dir.path().join("m.onnx").to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ]));
    let h: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&hist).unwrap()).unwrap();
    let epochs = h["epochs"].as_array().unwrap();
    assert_eq!(h["stopped"], "target reached");
    assert!(epochs.len() < 200);
    assert!(epochs.last().unwrap()["val_accuracy"].as_f64().unwrap() >= 0.9);
    assert!(
        epochs[..epochs.len() - 1].iter().all(|e| e["val_accuracy"].as_f64().unwrap() < 0.9),
        "stops at the first epoch reaching it"
    );
}
