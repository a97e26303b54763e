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
        pipe.write_all(bytes).unwrap();
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

    // An empty directory (only Spark's marker files).
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("_SUCCESS"), b"").unwrap();
    assert_refused(&["evaluate", m, "--data", empty.to_str().unwrap(), "--device", "cpu"], &["holds no data files"]);
}
