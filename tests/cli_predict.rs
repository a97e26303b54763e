//! The CLI end to end: `predict` on bundled data (both executors, Parquet and CSV), `inspect`,
//! `devices`, and every bad input getting a one-line error, a non-zero exit and no output file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use common::{data, model};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn distk(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_distk-gpu"));
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run distk-gpu")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads a predictions file: (rows of outputs, classes).
fn read_predictions(path: &Path) -> (Vec<Vec<f32>>, Vec<i64>) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap().build().unwrap();
    let (mut rows, mut classes) = (Vec::new(), Vec::new());
    for b in reader {
        let b = b.unwrap();
        let list = b.column_by_name("prediction").unwrap().as_list::<i32>();
        for i in 0..b.num_rows() {
            rows.push(list.value(i).as_primitive::<Float32Type>().values().to_vec());
        }
        classes.extend(b.column_by_name("predicted_class").unwrap().as_primitive::<Int64Type>().values().iter());
    }
    (rows, classes)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The command failed with a one-line error containing `needle` and left nothing in `dir`.
fn assert_clean_failure(o: &Output, needle: &str, dir: &Path) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    assert!(err.contains(needle), "stderr lacks `{needle}`: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    let left: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn predict_matches_the_oracle_on_both_executors_and_formats() {
    let dir = tmp();
    let oracle = common::read_npz(&common::root().join("tests/fixtures/oracles/forward/keras_mlp.npz"));
    let want = oracle["output_data"].f32s();
    let mut outs = Vec::new();
    for (device, file) in [("cpu", "digits_test.parquet"), ("wgpu", "digits_test.parquet"), ("wgpu", "digits_test.csv")]
    {
        let out = dir.path().join(format!("{device}-{file}.parquet"));
        let o = distk(
            &[
                "predict",
                model("keras_mlp.onnx").to_str().unwrap(),
                "--data",
                data(file).to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--device",
                device,
                "--batch-size",
                "100",
            ],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let (rows, classes) = read_predictions(&out);
        assert_eq!(rows.len(), 360, "every row predicted, the remainder batch included");
        let first: Vec<f32> = rows[..4].concat();
        assert!(common::rel_max_err(&first, &want) <= 1e-5, "{device}/{file} disagrees with onnxruntime");
        for (r, c) in rows.iter().zip(&classes) {
            assert_eq!(*c, distk_gpu::data::predictions::predicted_class(r));
        }
        outs.push(rows);
    }
    for o in &outs[1..] {
        let a: Vec<f32> = o.concat();
        assert!(common::rel_max_err(&a, &outs[0].concat()) <= 1e-5);
    }
}

#[test]
fn predict_reshapes_flat_features_for_the_cnn() {
    let dir = tmp();
    let out = dir.path().join("cnn.parquet");
    let o = distk(
        &[
            "predict",
            model("keras_cnn.onnx").to_str().unwrap(),
            "--data",
            data("mnist_small_test.parquet").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--device",
            "wgpu",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (rows, classes) = read_predictions(&out);
    assert_eq!(rows.len(), 1000);
    let oracle = common::read_npz(&common::root().join("tests/fixtures/oracles/forward/keras_cnn.npz"));
    assert!(common::rel_max_err(&rows[..4].concat(), &oracle["output_data"].f32s()) <= 1e-5);
    assert_eq!(&classes[..4], &[2, 8, 3, 8], "the oracle's argmax for the untrained model");
}

#[test]
fn bad_inputs_fail_cleanly() {
    let dir = tmp();
    let d = dir.path();
    let out = d.join("out.parquet");
    let out_s = out.to_str().unwrap();
    let mlp = model("keras_mlp.onnx");
    let mlp_s = mlp.to_str().unwrap();
    let digits = data("digits_test.parquet");
    let digits_s = digits.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();

    let o = distk(&["predict", "/nonexistent/model.onnx", "--data", digits_s, "--out", out_s], &[]);
    assert_clean_failure(&o, "cannot read `/nonexistent/model.onnx`", d);

    let o = distk(&["predict", digits_s, "--data", digits_s, "--out", out_s], &[]);
    assert_clean_failure(&o, "is not a readable ONNX model", d);

    let bytes = std::fs::read(&mlp).unwrap();
    let half = work.path().join("half.onnx");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let o = distk(&["predict", half.to_str().unwrap(), "--data", digits_s, "--out", out_s], &[]);
    assert_clean_failure(&o, "is not a readable ONNX model", d);

    let o =
        distk(&["predict", mlp_s, "--data", data("mnist_small_test.parquet").to_str().unwrap(), "--out", out_s], &[]);
    assert_clean_failure(&o, "input width 784", d);

    let o = distk(&["predict", mlp_s, "--data", digits_s, "--out", out_s, "--features-col", "pixels"], &[]);
    assert_clean_failure(&o, "has no column `pixels`", d);

    let o = distk(&["predict", mlp_s, "--data", "/nonexistent/data.parquet", "--out", out_s], &[]);
    assert_clean_failure(&o, "cannot open data file", d);

    // A text column where features should be.
    let texts = work.path().join("texts.parquet");
    let col: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
    let batch = RecordBatch::try_from_iter([("features", col)]).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(&texts).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let o = distk(&["predict", mlp_s, "--data", texts.to_str().unwrap(), "--out", out_s], &[]);
    assert_clean_failure(&o, "column `features`", d);

    // A non-finite value, named by row and column.
    let csv = std::fs::read_to_string(data("digits_test.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    lines[3] = lines[3].replacen("0.0", "nan", 1);
    let bad_csv = work.path().join("bad.csv");
    std::fs::write(&bad_csv, lines.join("\n")).unwrap();
    let o = distk(&["predict", mlp_s, "--data", bad_csv.to_str().unwrap(), "--out", out_s], &[]);
    assert_clean_failure(&o, "row 2", d);

    // No adapter: the Vulkan loader pointed at no driver.
    let o = distk(
        &["predict", mlp_s, "--data", digits_s, "--out", out_s, "--device", "wgpu"],
        &[
            ("WGPU_BACKEND", "vulkan"),
            ("VK_DRIVER_FILES", "/nonexistent.json"),
            ("VK_ICD_FILENAMES", "/nonexistent.json"),
        ],
    );
    assert_clean_failure(&o, "no GPU adapter found", d);

    // An unwritable output directory.
    let o = distk(&["predict", mlp_s, "--data", digits_s, "--out", "/nonexistent/dir/out.parquet"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("cannot create a file in `/nonexistent/dir`"), "{}", stderr(&o));
}

#[test]
fn inspect_reports_what_the_export_lost() {
    let o = distk(&["inspect", model("keras_cnn.stock.onnx").to_str().unwrap(), "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parameter_count"], 34720);
    assert_eq!(v["op_counts"]["Conv"], 2);
    assert_eq!(v["inputs"][0][1], "[unk__107, 28, 28, 1]");
    let lost: Vec<String> =
        v["lost_for_training"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    assert_eq!(lost.iter().filter(|l| l.contains("has no bias")).count(), 3, "{lost:?}");
    assert!(v["unsupported"].as_array().unwrap().is_empty());
    let o = distk(&["inspect", model("keras_mlp.onnx").to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("parameters 9610") && !text.contains("has no bias"), "{text}");
}

#[test]
fn devices_lists_lavapipe_and_says_what_auto_uses() {
    let o = distk(&["devices", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!v["adapters"].as_array().unwrap().is_empty(), "no adapter: is mesa-vulkan-drivers installed?");
    let o = distk(
        &["devices"],
        &[
            ("WGPU_BACKEND", "vulkan"),
            ("VK_DRIVER_FILES", "/nonexistent.json"),
            ("VK_ICD_FILENAMES", "/nonexistent.json"),
        ],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("no GPU adapter found") && text.contains("mesa-vulkan-drivers"),
        "{text}"
    );
}

#[test]
fn bench_harness_reports_json() {
    let dir = common::root().join("examples/models");
    let o = distk(
        &[
            "bench",
            "--json",
            "--sizes",
            "64,100",
            "--repeats",
            "1",
            "--batch-size",
            "8",
            "--models-dir",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["forward"].as_array().unwrap().len(), 4);
    for m in v["matmul"].as_array().unwrap() {
        assert!(m["rel_error"].as_f64().unwrap() <= 1e-5, "{m}");
        assert!(m["wgsl_gflops"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn features_from_named_scalar_columns() {
    let dir = tmp();
    let cols: Vec<String> = (0..64).map(|i| format!("f{i}")).collect();
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    let m = model("keras_mlp.onnx");
    let o = distk(
        &[
            "predict",
            m.to_str().unwrap(),
            "--data",
            data("digits_test.csv").to_str().unwrap(),
            "--features-col",
            &cols.join(","),
            "--out",
            a.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = distk(
        &[
            "predict",
            m.to_str().unwrap(),
            "--data",
            data("digits_test.parquet").to_str().unwrap(),
            "--out",
            b.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_predictions(&a).0, read_predictions(&b).0);
    // Columns in another order are other features: a different result.
    let mut rev = cols.clone();
    rev.reverse();
    let c = dir.path().join("c.parquet");
    let o = distk(
        &[
            "predict",
            m.to_str().unwrap(),
            "--data",
            data("digits_test.csv").to_str().unwrap(),
            "--features-col",
            &rev.join(","),
            "--out",
            c.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        &[],
    );
    assert!(o.status.success());
    assert_ne!(read_predictions(&c).0, read_predictions(&b).0);
}

#[test]
fn a_batch_larger_than_one_storage_binding_is_split() {
    // keras_cnn at 2,500 rows needs a 211 MiB convolution output, more than lavapipe binds (128 MiB):
    // the predictor runs it as smaller batches and the results equal the CPU executor's.
    let dir = tmp();
    let (g, c) = (dir.path().join("g.parquet"), dir.path().join("c.parquet"));
    let m = model("keras_cnn.onnx");
    let d = data("mnist_small_train.parquet");
    for (out, device) in [(&g, "wgpu"), (&c, "cpu")] {
        let o = distk(
            &[
                "predict",
                m.to_str().unwrap(),
                "--data",
                d.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--batch-size",
                "2500",
                "--device",
                device,
            ],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (gr, gc) = read_predictions(&g);
    let (cr, cc) = read_predictions(&c);
    assert_eq!(gr.len(), 5000);
    assert!(common::rel_max_err(&gr.concat(), &cr.concat()) <= 1e-5);
    assert!(gc.iter().zip(&cc).filter(|(a, b)| a != b).count() <= 2, "argmax ties aside, the classes agree");
}
