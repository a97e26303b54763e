//! Input that is wrong but looks right, or hostile (issue 16): a model whose input declares a
//! fixed batch other than `--batch-size` gets one clear error naming the input, its shape and the
//! way out, instead of rows cut into the wrong shape; and the fuzz harnesses of the data reader
//! (Parquet, Spark vector parts, CSV, Arrow IPC) and of the parameter server's wire frames and log
//! records: mutated input is read or refused, never a panic, an abort or a hang. (The importer's
//! harness is onnx-import/tests/mutated_models.rs; the job API's is in tests/punchcard.rs.)

mod common;

use std::process::Command;
use std::time::Duration;

use common::onnx_pb::{ints, model_bytes, node, tensor, value};
use common::{data, root};
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
    model_bytes(graph)
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

/// The seeds of the data reader's harness: a Parquet file, a Spark part with ML vectors, the head
/// of a CSV file and an Arrow IPC file, each with its extension.
fn data_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let parquet = std::fs::read(data("digits_test.parquet")).unwrap();
    let spark_dir = root().join("tests/data/spark/vectors");
    let mut parts: Vec<_> = std::fs::read_dir(&spark_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    let vectors = std::fs::read(&parts[0]).unwrap();
    let csv_text = std::fs::read_to_string(data("digits_test.csv")).unwrap();
    let csv: String = csv_text.lines().take(24).map(|l| format!("{l}\n")).collect();
    // The Parquet rows again as an Arrow IPC file.
    let file = std::fs::File::open(data("digits_test.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(40)
        .build()
        .unwrap();
    let batch = reader.into_iter().next().unwrap().unwrap();
    let mut ipc = Vec::new();
    {
        let mut w = arrow_ipc::writer::FileWriter::try_new(&mut ipc, &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }
    vec![("parquet", parquet), ("parquet", vectors), ("csv", csv.into_bytes()), ("arrow", ipc)]
}

/// Reads everything of `path` the ways training does: loaded whole, and streamed in batches.
fn read_all(path: &std::path::Path) -> (bool, bool) {
    use distk_gpu::data::dataset::{DataColumns, Dataset};
    use distk_gpu::data::reader::{DataReader, FeatureColumns};
    let loaded = Dataset::load(path, &DataColumns::plain("features", "label"), 64, 10).is_ok();
    let streamed = (|| -> anyhow::Result<()> {
        let mut r = DataReader::open(path, &FeatureColumns::parse("features"), Some("label"), 16)?;
        while r.next_rows()?.is_some() {}
        Ok(())
    })()
    .is_ok();
    (loaded, streamed)
}

/// Mutated data files are read or refused with an error: never a panic, an abort or a hang (10 s
/// per file). 400 cases by default (`DISTK_FUZZ_CASES`).
#[test]
fn the_data_reader_survives_mutated_files() {
    use common::mutate::{Mutator, bounded, cases};
    let dir = tempfile::tempdir().unwrap();
    let seeds = data_seeds();
    // The seeds themselves read.
    for (i, (ext, bytes)) in seeds.iter().enumerate() {
        let p = dir.path().join(format!("seed-{i}.{ext}"));
        std::fs::write(&p, bytes).unwrap();
        assert_eq!(read_all(&p), (true, true), "seed {i} ({ext}) reads");
    }
    let mut m = Mutator::new(16);
    let (mut panics, mut read, n) = (Vec::new(), 0, cases(400));
    for case in 0..n {
        let (ext, bytes) = &seeds[case % seeds.len()];
        let p = dir.path().join(format!("case-{case}.{ext}"));
        std::fs::write(&p, m.mutate(bytes)).unwrap();
        let what = format!("data case {case} ({ext})");
        match bounded(&what, Duration::from_secs(10), {
            let p = p.clone();
            move || read_all(&p)
        }) {
            Ok((loaded, _)) => read += usize::from(loaded),
            Err(panic) => panics.push(format!("{what}: {panic}")),
        }
        let _ = std::fs::remove_file(&p);
    }
    eprintln!("{n} mutated data files: {read} read whole, the others refused");
    assert!(panics.is_empty(), "{} panics:\n{}", panics.len(), panics.join("\n"));
}

/// Mutated wire frames (every kind, with and without payloads) and write-ahead log records are
/// decoded or refused: never a panic or a hang. 2,000 cases by default (`DISTK_FUZZ_CASES`).
#[test]
fn wire_frames_and_log_records_survive_mutation() {
    use common::mutate::{Mutator, bounded, cases};
    use distk_net::wire::{Header, Kind, decode, encode, encode_bytes};
    let kinds = [
        Kind::Hello,
        Kind::Welcome,
        Kind::FetchJob,
        Kind::Job,
        Kind::Commit,
        Kind::Ack,
        Kind::Pull,
        Kind::Centre,
        Kind::Epoch,
        Kind::Report,
        Kind::Done,
        Kind::Error,
        Kind::CommitPull,
    ];
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let h = Header { seq: 3, clock: 17, round: 1, staleness: 2, ..Header::new(*k, i as u32) };
        seeds.push(encode(&h, &[]).unwrap());
        seeds.push(encode(&h, &[0.5, -1.0, 3.25, 1e-7, 8.0]).unwrap());
        seeds.push(encode_bytes(&h, b"{\"worker\": 1, \"steps\": []}").unwrap());
    }
    let n = cases(2000);
    let mut m = Mutator::new(32);
    let mut cases_by_outcome = [0usize; 2];
    let mut panics = Vec::new();
    for case in 0..n {
        let bytes = m.mutate(&seeds[case % seeds.len()]);
        let what = format!("frame case {case}");
        let r = bounded(&what, Duration::from_secs(5), move || {
            let mut buf = rkyv::util::AlignedVec::<16>::new();
            buf.extend_from_slice(&bytes);
            let decoded = decode(&buf, 1 << 20).map(|f| {
                let _ = f.floats();
                let _ = std::str::from_utf8(f.payload);
            });
            // The same bytes as a log record's body.
            let _ = distk_net::journal::Op::decode(&bytes);
            decoded.is_ok()
        });
        match r {
            Ok(ok) => cases_by_outcome[usize::from(ok)] += 1,
            Err(panic) => panics.push(format!("{what}: {panic}")),
        }
    }
    eprintln!("{n} mutated frames: {} decoded, {} refused", cases_by_outcome[1], cases_by_outcome[0]);
    assert!(panics.is_empty(), "{} panics:\n{}", panics.len(), panics.join("\n"));
    assert!(cases_by_outcome[0] > n / 4 && cases_by_outcome[1] > 0, "the mutations reach both outcomes");
}

/// `--max-memory` bounds what the importer creates, the data held in memory and the model's
/// buffers, each refused with one line naming the budget.
#[test]
fn max_memory_bounds_the_importer_the_data_and_the_model() {
    use common::onnx_pb::{node, value};
    let dir = tempfile::tempdir().unwrap();
    let distk =
        |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_distk-gpu")).current_dir(root()).args(args).output().unwrap();
    let refused = |o: &std::process::Output, want: &str| {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success() && err.contains(want) && err.contains("--max-memory"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
    };
    // A model filling a 2000 x 2000 constant: imports under the default budget, not under 32 MiB.
    let shape = ints("shape", &[2000, 2000]);
    let graph = pb::GraphProto {
        name: "fill".into(),
        node: vec![node("ConstantOfShape", &["shape"], "c", vec![]), node("Add", &["x", "c"], "y", vec![])],
        initializer: vec![shape],
        input: vec![value("x", 1, &[Some(2000), Some(2000)])],
        output: vec![value("y", 1, &[Some(2000), Some(2000)])],
        ..Default::default()
    };
    let fill = dir.path().join("fill.onnx");
    std::fs::write(&fill, model_bytes(graph)).unwrap();
    let f = fill.to_str().unwrap();
    // `inspect` reports an import error in its report.
    let report = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let free = report(distk(&["inspect", f]));
    assert!(!free.contains("import error"), "{free}");
    let bounded = report(distk(&["inspect", f, "--max-memory", "32M"]));
    assert!(
        bounded.contains("import error")
            && bounded.contains(
                "a tensor of 4000000 elements takes more than a quarter of the memory budget of 32 MiB (--max-memory)"
            ),
        "{bounded}"
    );
    // Rows held in memory: the digits CSV (1,437 rows, 373 KiB as floats) under 512 KiB.
    let mlp = root().join("examples/models/keras_mlp.onnx");
    let csv = data("digits_train.csv");
    let (m, c) = (mlp.to_str().unwrap(), csv.to_str().unwrap());
    let out = dir.path().join("out.onnx");
    let o = distk(&[
        "run",
        m,
        "--data",
        c,
        "--device",
        "cpu",
        "--quiet",
        "--max-memory",
        "512K",
        "--out",
        out.to_str().unwrap(),
    ]);
    refused(&o, "needs more than 256.0 KiB in memory, half the memory budget");
    // The model's buffers: the CNN at batch 512 under 16 MiB.
    let cnn = root().join("examples/models/keras_cnn.onnx");
    let small = data("mnist_small_test.parquet");
    let args = ["run", cnn.to_str().unwrap(), "--data", small.to_str().unwrap(), "--batch-size", "512"];
    let o = distk(
        &[&args[..], &["--device", "cpu", "--quiet", "--max-memory", "16M", "--out", out.to_str().unwrap()]].concat(),
    );
    refused(&o, "MiB of buffers at this batch size; its largest tensor");
    assert!(!out.exists(), "nothing written");
}
