//! Data as Spark writes it (issue 12): part-file directories with `_SUCCESS` and `.crc` files,
//! hive partition folders, Spark ML vectors (dense and sparse), StringIndexer's double labels,
//! OneHotEncoder's vector labels, CSV parts, and Arrow IPC streams on standard input. The
//! datasets under tests/data/spark were written by Spark 3.5.3 itself
//! (examples/gen/spark_datasets.py) from examples/data/digits_test.parquet.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use common::{data, evaluate_json, model, root};
use distk_gpu::data::{DataReader, FeatureColumns};
use parquet::arrow::ArrowWriter;

fn spark(name: &str) -> PathBuf {
    root().join("tests/data/spark").join(name)
}

/// Every row of a dataset as (feature bits, class), sorted: the order of Spark's parts is not
/// the original order.
fn sorted_rows(path: &Path, features: &str) -> Vec<(Vec<u32>, i64)> {
    let mut reader = DataReader::open(path, &FeatureColumns::parse(features), Some("label"), 50).unwrap();
    let mut out = Vec::new();
    while let Some(rows) = reader.next_rows().unwrap() {
        for r in 0..rows.count {
            let x = rows.features[r * rows.width..(r + 1) * rows.width].iter().map(|v| v.to_bits()).collect();
            let class = match (&rows.labels, &rows.targets) {
                (Some(l), _) => l[r],
                (None, Some(t)) => {
                    let row = &t[r * rows.target_width..(r + 1) * rows.target_width];
                    assert_eq!(row.iter().filter(|&&v| v == 1.0).count(), 1, "one-hot row {row:?}");
                    row.iter().position(|&v| v == 1.0).unwrap() as i64
                }
                _ => panic!("no labels"),
            };
            out.push((x, class));
        }
    }
    out.sort();
    out
}

#[test]
fn spark_written_directories_read_as_the_rows_they_were_written_from() {
    let original = sorted_rows(&data("digits_test.parquet"), "features");
    assert_eq!(original.len(), 360);
    for (dir, features) in
        [("vectors", "features"), ("partitioned", "features"), ("csv", "features"), ("onehot", "features")]
    {
        let rows = sorted_rows(&spark(dir), features);
        assert_eq!(rows.len(), original.len(), "{dir}");
        assert!(rows == original, "{dir}: the rows differ from the original's");
    }
    // Both kinds of vector are in the parts (the generator stores even ids dense).
    let part = std::fs::read_dir(spark("vectors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let file = std::fs::File::open(part).unwrap();
    let batches =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for b in batches {
        let b = b.unwrap();
        let s = arrow_array::cast::AsArray::as_struct(b.column_by_name("features").unwrap());
        let ty = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int8Type>(s.column(0));
        kinds.extend(ty.values().iter().copied());
    }
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), vec![0, 1], "sparse (0) and dense (1) vectors");
}

#[test]
fn evaluate_on_a_spark_directory_equals_evaluate_on_the_original_file() {
    let m = model("keras_mlp.onnx");
    let want = evaluate_json(&m, &data("digits_test.parquet"), "cpu");
    for dir in ["vectors", "partitioned", "onehot"] {
        let got = evaluate_json(&m, &spark(dir), "cpu");
        assert_eq!(got["rows"], want["rows"], "{dir}");
        // The same rows in another order: the means differ by summation order only.
        for key in ["loss", "accuracy"] {
            let (a, b) = (got[key].as_f64().unwrap(), want[key].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{dir}: {key} {a} vs {b}");
        }
        // The same predictions row for row: the same confusion matrix, whose diagonal is the accuracy.
        assert_eq!(got["confusion_matrix"], want["confusion_matrix"], "{dir}");
        let m = got["confusion_matrix"].as_array().unwrap();
        let diagonal: u64 = (0..m.len()).map(|i| m[i][i].as_u64().unwrap()).sum();
        assert!((diagonal as f64 / 360.0 - got["accuracy"].as_f64().unwrap()).abs() < 1e-6);
        assert_eq!(got["per_class"].as_array().unwrap().len(), 10);
    }
}

fn distk(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_distk-gpu"))
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run distk-gpu");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A command that stops reading early (bad input) closes the pipe: not this test's failure.
        if let Err(e) = pipe.write_all(bytes) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    child.wait_with_output().unwrap()
}

/// The digits test split as one record batch (features list<float32>, label int64).
fn digits_batch() -> RecordBatch {
    let mut reader =
        DataReader::open(&data("digits_test.parquet"), &FeatureColumns::parse("features"), Some("label"), 1000)
            .unwrap();
    let rows = reader.next_rows().unwrap().unwrap();
    let mut list = ListBuilder::new(Float32Builder::new());
    for r in rows.features.chunks(rows.width) {
        list.values().append_slice(r);
        list.append(true);
    }
    let cols: Vec<ArrayRef> = vec![Arc::new(list.finish()), Arc::new(Int64Array::from(rows.labels.unwrap()))];
    RecordBatch::try_from_iter(["features", "label"].into_iter().zip(cols)).unwrap()
}

#[test]
fn an_arrow_ipc_stream_on_standard_input_trains_and_evaluates() {
    let batch = digits_batch();
    let mut stream = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut stream, &batch.schema()).unwrap();
        // Two batches, as a Spark partition arrives in several.
        w.write(&batch.slice(0, 100)).unwrap();
        w.write(&batch.slice(100, 260)).unwrap();
        w.finish().unwrap();
    }
    let m = model("keras_mlp.onnx");
    let o = distk(&["evaluate", m.to_str().unwrap(), "--data", "-", "--device", "cpu", "--json"], Some(&stream));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = evaluate_json(&m, &data("digits_test.parquet"), "cpu");
    assert_eq!(got, want, "the same rows in the same order give the same figures");
    // A worker's data from a pipe: one epoch of training reads the stream.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trained.onnx");
    let o = distk(
        &[
            "run",
            m.to_str().unwrap(),
            "--data",
            "-",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        Some(&stream),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.exists());
    // Garbage on standard input: one clear error.
    let o = distk(&["evaluate", m.to_str().unwrap(), "--data", "-", "--device", "cpu"], Some(b"f0,f1\n1,2\n"));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("standard input is not a readable Arrow IPC stream"), "{err}");
}

fn write_parquet(path: &Path, cols: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Fails with one error line containing every needle.
fn assert_refused(args: &[&str], needles: &[&str]) {
    let o = distk(args, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`: {err}");
    }
}

#[test]
fn bad_parts_are_named_with_their_row_group_and_row() {
    let m = model("keras_mlp.onnx");
    let m = m.to_str().unwrap();
    let batch = digits_batch();
    let features = batch.column(0).slice(0, 8);
    let dir = tempfile::tempdir().unwrap();

    // StringIndexer-like doubles that are not whole numbers.
    let halves = dir.path().join("halves.parquet");
    let labels: Vec<f64> = (0..8).map(|i| if i == 5 { 2.5 } else { 1.0 }).collect();
    write_parquet(&halves, vec![("features", features.clone()), ("label", Arc::new(Float64Array::from(labels)))]);
    assert_refused(
        &["evaluate", m, "--data", halves.to_str().unwrap(), "--device", "cpu"],
        &["halves.parquet` row group 0, row 5, column `label`: label 2.5 is not a whole number"],
    );

    // A directory whose second part lacks the label column.
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    write_parquet(
        &parts.join("part-00000.parquet"),
        vec![("features", features.clone()), ("label", Arc::new(Int64Array::from(vec![1; 8])))],
    );
    write_parquet(
        &parts.join("part-00001.parquet"),
        vec![("features", features.clone()), ("target", Arc::new(Int64Array::from(vec![1; 8])))],
    );
    std::fs::write(parts.join("_SUCCESS"), b"").unwrap();
    assert_refused(
        &["evaluate", m, "--data", parts.to_str().unwrap(), "--device", "cpu"],
        &["part-00001.parquet` has no column `label`"],
    );

    // A corrupt part: cut in half.
    let bytes = std::fs::read(parts.join("part-00000.parquet")).unwrap();
    std::fs::write(parts.join("part-00001.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(
        &["evaluate", m, "--data", parts.to_str().unwrap(), "--device", "cpu"],
        &["part-00001.parquet` is not a readable Parquet file"],
    );

    // Parts whose labels are of different forms: class indices, then one-hot lists.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    write_parquet(
        &mixed.join("part-00000.parquet"),
        vec![("features", features.clone()), ("label", Arc::new(Int64Array::from(vec![1; 8])))],
    );
    let mut one_hot = vec![0.0f32; 80];
    for r in 0..8 {
        one_hot[r * 10 + 1] = 1.0;
    }
    write_parquet(
        &mixed.join("part-00001.parquet"),
        vec![("features", features.clone()), ("label", distk_gpu::transform::values::float_list(one_hot, 10))],
    );
    assert_refused(
        &["evaluate", m, "--data", mixed.to_str().unwrap(), "--device", "cpu"],
        &["part-00001.parquet column `label` holds labels of another form"],
    );

    // An empty directory (only Spark's marker files).
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("_SUCCESS"), b"").unwrap();
    assert_refused(&["evaluate", m, "--data", empty.to_str().unwrap(), "--device", "cpu"], &["holds no data files"]);
}

/// Every row of a Parquet file or directory by `id`: each column's values as f64 (scalars one
/// value; lists, nested lists and vectors flattened).
fn columns_by_id(path: &Path) -> std::collections::BTreeMap<i64, std::collections::BTreeMap<String, Vec<f64>>> {
    use distk_gpu::data::columns::{ColumnShape, column_shape, push_rows};
    use distk_gpu::transform::values::scalars;
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = std::collections::BTreeMap::new();
    for f in files {
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap();
        for b in reader {
            let b = b.unwrap();
            let ids = scalars(b.column_by_name("id").unwrap().as_ref()).unwrap();
            for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                let values: Vec<Vec<f64>> = match column_shape(col.data_type()) {
                    Some(ColumnShape::Scalar) => scalars(col.as_ref()).unwrap().into_iter().map(|v| vec![v]).collect(),
                    Some(_) => {
                        let mut flat = Vec::new();
                        let w = push_rows(col.as_ref(), &mut flat).unwrap().unwrap_or(0);
                        flat.chunks(w).map(|r| r.iter().map(|&v| v as f64).collect()).collect()
                    }
                    None => continue,
                };
                for (id, v) in ids.iter().zip(values) {
                    out.entry(*id as i64)
                        .or_insert_with(std::collections::BTreeMap::new)
                        .insert(field.name().clone(), v);
                }
            }
        }
    }
    out
}

#[test]
fn transform_writes_every_step_as_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let steps = [
        "dense:features:fd",
        "min-max:fd:fm:o_min=0,o_max=2,n_min=-1,n_max=1",
        "standard:fd:fs",
        "one-hot:label:l1h:output_dim=10",
        "label-index:l1h:li:argmax=true",
        "binary-label:label:lb:label=3",
        "reshape:fd:img:shape=8x8x1",
    ];
    let input = spark("vectors");
    let mut args = vec!["transform", "--data", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    for s in &steps {
        args.extend(["--step", s]);
    }
    let o = distk(&args, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A directory in, a directory out: one part per input part and Spark's marker.
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["_SUCCESS", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]);

    // The original rows in file order: Spark's ids are the row numbers (one input partition).
    let mut reader =
        DataReader::open(&data("digits_test.parquet"), &FeatureColumns::parse("features"), Some("label"), 1000)
            .unwrap();
    let original = reader.next_rows().unwrap().unwrap();
    let w = original.width;
    let rows = columns_by_id(&out);
    assert_eq!(rows.len(), 360);
    let n = 360.0;
    let mean: Vec<f64> =
        (0..w).map(|k| (0..360).map(|r| original.features[r * w + k] as f64).sum::<f64>() / n).collect();
    let std: Vec<f64> = (0..w)
        .map(|k| ((0..360).map(|r| (original.features[r * w + k] as f64 - mean[k]).powi(2)).sum::<f64>() / n).sqrt())
        .collect();
    for (&id, row) in &rows {
        let r = id as usize;
        let x: Vec<f64> = original.features[r * w..(r + 1) * w].iter().map(|&v| v as f64).collect();
        let label = original.labels.as_ref().unwrap()[r];
        assert_eq!(row["fd"], x, "dense row {id}");
        assert_eq!(row["img"], x, "reshape keeps the values in order, row {id}");
        assert_eq!(row["label"], vec![label as f64]);
        let fm: Vec<f64> = x.iter().map(|v| ((v - 1.0) as f32) as f64).collect();
        assert_eq!(row["fm"], fm, "min-max [0,2] -> [-1,1] is x - 1, row {id}");
        for k in 0..w {
            let want = if std[k] == 0.0 { x[k] - mean[k] } else { (x[k] - mean[k]) / std[k] };
            assert!(
                (row["fs"][k] - want).abs() <= 1e-5 * want.abs().max(1.0),
                "standard row {id} [{k}]: {} vs {want}",
                row["fs"][k]
            );
        }
        let mut one_hot = vec![0.0; 10];
        one_hot[label as usize] = 1.0;
        assert_eq!(row["l1h"], one_hot);
        assert_eq!(row["li"], vec![label as f64]);
        assert_eq!(row["lb"], if label == 3 { vec![1.0, 0.0] } else { vec![0.0, 1.0] });
    }
    // The fitted step is printed so that it can be given again.
    assert!(String::from_utf8_lossy(&o.stderr).contains("fitted: --transform 'standard:fd:fs:mean="));
}

#[test]
fn predict_keeps_columns_and_writes_a_part_per_input_part() {
    let dir = tempfile::tempdir().unwrap();
    let m = model("keras_mlp.onnx");
    let m = m.to_str().unwrap();
    let spark_out = dir.path().join("preds");
    let o = distk(
        &[
            "predict",
            m,
            "--data",
            spark("vectors").to_str().unwrap(),
            "--out",
            spark_out.to_str().unwrap(),
            "--keep-cols",
            "id,label",
            "--device",
            "cpu",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plain_out = dir.path().join("plain.parquet");
    let o = distk(
        &[
            "predict",
            m,
            "--data",
            data("digits_test.parquet").to_str().unwrap(),
            "--out",
            plain_out.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Join the Spark-side predictions back by id: the same outputs as the original file's rows.
    let joined = columns_by_id(&spark_out);
    assert_eq!(joined.len(), 360);
    let file = std::fs::File::open(&plain_out).unwrap();
    let mut plain = Vec::new();
    for b in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap() {
        let b = b.unwrap();
        let mut flat = Vec::new();
        let w = distk_gpu::data::columns::push_rows(b.column_by_name("prediction").unwrap().as_ref(), &mut flat)
            .unwrap()
            .unwrap();
        plain.extend(flat.chunks(w).map(|r| r.to_vec()));
    }
    for (&id, row) in &joined {
        let want = &plain[id as usize];
        for (g, w) in row["prediction"].iter().zip(want) {
            assert!((g - *w as f64).abs() <= 1e-6, "row {id}: {g} vs {w}");
        }
        assert_eq!(row["predicted_class"][0] as i64, distk_gpu::data::predictions::predicted_class(want));
        assert!(row.contains_key("label"));
    }
    let parts = std::fs::read_dir(&spark_out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|e| e == "parquet"))
        .count();
    assert_eq!(parts, 3);
    // A column to keep that is not there: one error, nothing written.
    let missing = dir.path().join("missing");
    assert_refused(
        &[
            "predict",
            m,
            "--data",
            spark("vectors").to_str().unwrap(),
            "--out",
            missing.to_str().unwrap(),
            "--keep-cols",
            "row_id",
            "--device",
            "cpu",
        ],
        &["has no column `row_id` to keep (columns: id, features, label)"],
    );
    assert!(!missing.exists());
}

#[test]
fn run_applies_steps_on_the_fly_and_fits_standard_on_the_training_rows() {
    let dir = tempfile::tempdir().unwrap();
    let m = model("keras_mlp.onnx");
    let out = dir.path().join("trained.onnx");
    let o = distk(
        &[
            "run",
            m.to_str().unwrap(),
            "--data",
            spark("vectors").to_str().unwrap(),
            "--validation-data",
            spark("partitioned").to_str().unwrap(),
            "--transform",
            "standard:features:fs",
            "--transform",
            "one-hot:label:l1h:output_dim=10",
            "--features-col",
            "fs",
            "--label-col",
            "l1h",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("fitted on the training data: --transform 'standard:features:fs:mean="), "{err}");
    assert!(out.exists());
}

#[test]
fn regression_on_float_labels_trains_and_evaluates_with_mse_and_mae() {
    let dir = tempfile::tempdir().unwrap();
    let batch = digits_batch();
    let labels = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(batch.column(1));
    // A non-whole target: half the digit.
    let target: Vec<f64> = labels.values().iter().map(|&l| l as f64 / 2.0).collect();
    let path = dir.path().join("regression.parquet");
    write_parquet(&path, vec![("features", batch.column(0).clone()), ("target", Arc::new(Float64Array::from(target)))]);
    let m = root().join("tests/fixtures/models/torch_regression.onnx");
    let out = dir.path().join("trained.onnx");
    let history = dir.path().join("h.json");
    let p = path.to_str().unwrap();
    let o = distk(
        &[
            "run",
            m.to_str().unwrap(),
            "--data",
            p,
            "--label-col",
            "target",
            "--loss",
            "mean_squared_error",
            "--epochs",
            "5",
            "--learning-rate",
            "0.01",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h: serde_json::Value = serde_json::from_slice(&std::fs::read(&history).unwrap()).unwrap();
    let losses: Vec<f64> = h["epochs"].as_array().unwrap().iter().map(|e| e["loss"].as_f64().unwrap()).collect();
    assert!(losses.last().unwrap() < &(losses[0] * 0.8), "the MSE falls: {losses:?}");
    let o = distk(
        &[
            "evaluate",
            out.to_str().unwrap(),
            "--data",
            p,
            "--label-col",
            "target",
            "--loss",
            "mse",
            "--device",
            "cpu",
            "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (loss, mse, mae) = (r["loss"].as_f64().unwrap(), r["mse"].as_f64().unwrap(), r["mae"].as_f64().unwrap());
    // The MSE loss graph and the MSE of the predicted outputs are the same number.
    assert!((loss - mse).abs() <= 1e-5 * loss, "loss {loss} vs mse {mse}");
    assert!(mae > 0.0 && mae * mae <= mse + 1e-9, "mae {mae}, mse {mse}");
    assert!(r.get("confusion_matrix").is_none());
}

#[test]
fn a_distributed_run_writes_its_history_as_csv_and_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let m = model("keras_mlp.onnx");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let o = distk(
        &[
            "run",
            m.to_str().unwrap(),
            "--data",
            data("digits_train.parquet").to_str().unwrap(),
            "--validation-data",
            data("digits_test.parquet").to_str().unwrap(),
            "--workers",
            "2",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--out",
            &path("c.onnx"),
            "--history",
            &path("h.json"),
            "--history-csv",
            &path("h.csv"),
            "--plot",
            &path("h.svg"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(path("h.json")).unwrap()).unwrap();
    let csv = std::fs::read_to_string(path("h.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "kind,worker,step,epoch,loss,accuracy,clock,staleness,net_wait_s,time,val_loss,val_accuracy"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let steps: usize = report["worker_reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["history"]["steps"].as_array().unwrap().len())
        .sum();
    assert_eq!(rows.iter().filter(|r| r[0] == "step").count(), steps);
    let centre: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == "centre").collect();
    let epochs = report["epochs"].as_array().unwrap();
    assert_eq!(centre.len(), epochs.len());
    for (row, e) in centre.iter().zip(epochs) {
        // serde_json parses floats to within an ulp (no float_roundtrip feature).
        for (text, key) in [(row[10], "loss"), (row[11], "accuracy")] {
            let (csv, json) = (text.parse::<f64>().unwrap(), e[key].as_f64().unwrap());
            assert!((csv - json).abs() <= 1e-15 * json.abs().max(1.0), "{key}: {csv} vs {json}");
        }
    }
    let svg = std::fs::read_to_string(path("h.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "an SVG plot");
}

/// Writes `rows` rows of the digits features (repeated) with their labels, in row groups of
/// `group` rows, plain-encoded and uncompressed (a file as large as its values).
fn write_digits(path: &Path, rows: usize, group: usize) {
    let batch = digits_batch();
    let n = batch.num_rows();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .set_dictionary_enabled(false)
        .build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    let mut written = 0;
    while written < rows {
        let take = n.min(rows - written);
        w.write(&batch.slice(0, take)).unwrap();
        written += take;
    }
    w.close().unwrap();
}

#[test]
fn a_streamed_run_is_bit_equal_to_the_in_memory_run_for_one_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("one_group.parquet");
    write_digits(&data, 360, 10_000);
    let m = model("keras_mlp.onnx");
    let mut models = Vec::new();
    let mut steps = Vec::new();
    for max_bytes in ["0", "1000000000"] {
        let out = dir.path().join(format!("m{max_bytes}.onnx"));
        let hist = dir.path().join(format!("h{max_bytes}.json"));
        let o = distk(
            &[
                "run",
                m.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--epochs",
                "2",
                "--shuffle",
                "--seed",
                "7",
                "--device",
                "cpu",
                "--in-memory-max-bytes",
                max_bytes,
                "--shuffle-buffer",
                "360",
                "--out",
                out.to_str().unwrap(),
                "--history",
                hist.to_str().unwrap(),
            ],
            None,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let h: serde_json::Value = serde_json::from_slice(&std::fs::read(&hist).unwrap()).unwrap();
        assert_eq!(h.get("peak_resident_rows").is_some(), max_bytes == "0", "only the streamed run streams");
        steps.push(h["steps"].as_array().unwrap().iter().map(|s| s["loss"].as_f64().unwrap()).collect::<Vec<_>>());
        models.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(steps[0], steps[1], "the same steps");
    assert!(models[0] == models[1], "the same trained model, byte for byte");
}

#[test]
fn streaming_a_50_mb_file_holds_at_most_the_shuffle_buffer_and_one_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("large.parquet");
    let (rows, group, buffer) = (200_000usize, 20_000usize, 30_000usize);
    write_digits(&data, rows, group);
    let size = std::fs::metadata(&data).unwrap().len();
    assert!(size >= 50_000_000, "{size} bytes");
    let hist = dir.path().join("h.json");
    let out = dir.path().join("m.onnx");
    let buffer_text = buffer.to_string();
    let o = distk(
        &[
            "run",
            model("keras_mlp.onnx").to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "1",
            "--shuffle",
            "--batch-size",
            "256",
            "--device",
            "cpu",
            "--quiet",
            "--in-memory-max-bytes",
            "10000000",
            "--shuffle-buffer",
            &buffer_text,
            "--out",
            out.to_str().unwrap(),
            "--history",
            hist.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h: serde_json::Value = serde_json::from_slice(&std::fs::read(&hist).unwrap()).unwrap();
    let peak = h["peak_resident_rows"].as_u64().unwrap() as usize;
    assert!(peak <= buffer + group, "{peak} rows resident");
    assert_eq!(h["steps"].as_array().unwrap().len(), rows.div_ceil(256), "every row trained");
}

#[test]
fn streamed_workers_each_read_their_own_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("h.json");
    // digits_train.parquet holds 6 row groups (5 of 256 rows, 1 of 157).
    let o = distk(
        &[
            "run",
            model("keras_mlp.onnx").to_str().unwrap(),
            "--data",
            data("digits_train.parquet").to_str().unwrap(),
            "--workers",
            "3",
            "--epochs",
            "2",
            "--shuffle",
            "--device",
            "cpu",
            "--in-memory-max-bytes",
            "0",
            "--shuffle-buffer",
            "300",
            "--out",
            dir.path().join("c.onnx").to_str().unwrap(),
            "--history",
            hist.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1437 rows (streamed: each worker reads its own row groups)"), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&hist).unwrap()).unwrap();
    let mut rows: Vec<u64> =
        report["worker_reports"].as_array().unwrap().iter().map(|w| w["history"]["rows"].as_u64().unwrap()).collect();
    rows.sort_unstable();
    // Largest row groups first, each to the worker with the fewest rows: 256+157, 256+256, 256+256.
    assert_eq!(rows, vec![413, 512, 512]);
}
