//! Object storage (issue 12): `s3://` data, models, outputs, histories and parameter-server
//! snapshots, through a real S3-compatible server on loopback: moto in server mode, which
//! scripts/setup.sh installs in target/py-moto (`DISTK_MOTO_PYTHON` names its python). The
//! objects are put and read back with boto3, the AWS SDK, so both sides of the wire are real.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{data, model, root};

/// A moto S3 server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
    python: PathBuf,
    /// An empty HOME, so that no ~/.aws of the machine takes part.
    home: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_python() -> PathBuf {
    let p = std::env::var_os("DISTK_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/py-moto/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh (it installs moto's S3 server in target/py-moto) or set DISTK_MOTO_PYTHON",
        p.display()
    );
    p
}

fn start_moto() -> Moto {
    let python = moto_python();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto's server");
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "moto's server did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { child, endpoint: format!("http://127.0.0.1:{port}"), python, home: tempfile::tempdir().unwrap() }
}

impl Moto {
    /// The AWS environment of a client of this server (and nothing from the machine's).
    fn env(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.home.path())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "distk-test")
            .env("AWS_SECRET_ACCESS_KEY", "distk-test-secret")
            .env("AWS_REGION", "us-east-1");
    }

    /// Runs a boto3 script (`s3` is a client of this server) and returns its standard output.
    fn boto(&self, script: &str) -> String {
        let mut cmd = Command::new(&self.python);
        self.env(&mut cmd);
        let prelude =
            "import boto3, os, sys, json\ns3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])\n";
        let o = cmd.arg("-c").arg(format!("{prelude}{script}")).output().unwrap();
        assert!(o.status.success(), "boto3 script failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    fn put_file(&self, local: &Path, bucket: &str, key: &str) {
        self.boto(&format!("s3.upload_file({:?}, {bucket:?}, {key:?})", local.to_str().unwrap()));
    }

    fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("object");
        self.boto(&format!("s3.download_file({bucket:?}, {key:?}, {:?})", local.to_str().unwrap()));
        std::fs::read(local).unwrap()
    }

    /// Every key under `prefix`, sorted.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.boto(&format!(
            "r = s3.list_objects_v2(Bucket={bucket:?}, Prefix={prefix:?})\nprint(json.dumps(sorted(o['Key'] for o in r.get('Contents', []))))"
        ));
        serde_json::from_str(out.trim()).unwrap()
    }

    /// `distk-gpu ARGS` as a client of this server.
    fn distk(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_distk-gpu"));
        self.env(&mut cmd);
        cmd.args(args).output().unwrap()
    }
}

fn ok(o: Output, what: &str) -> Output {
    assert!(o.status.success(), "{what} failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn local_distk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distk-gpu")).args(args).output().unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap()
}

/// Uploads every file of a Spark part folder (with `_SUCCESS` and `.crc` files) under `prefix/`.
fn put_folder(s3: &Moto, dir: &Path, bucket: &str, prefix: &str) -> usize {
    let mut parts = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        s3.put_file(&p, bucket, &format!("{prefix}/{name}"));
        parts += usize::from(name.starts_with("part-"));
    }
    parts
}

#[test]
fn data_models_outputs_and_histories_round_trip_through_s3() {
    let s3 = start_moto();
    s3.boto("s3.create_bucket(Bucket='distk')");
    let vectors = root().join("tests/data/spark/vectors");
    let parts = put_folder(&s3, &vectors, "distk", "data/vectors");
    assert!(parts >= 2, "the Spark folder has several parts");
    s3.put_file(&model("keras_mlp.onnx"), "distk", "models/keras_mlp.onnx");

    // Training from S3 to S3 equals training on the local copies, bit for bit.
    let local = tempfile::tempdir().unwrap();
    let (lm, lh) = (local.path().join("trained.onnx"), local.path().join("history.json"));
    let common_args = ["--epochs", "2", "--seed", "3", "--shuffle", "--device", "cpu", "--quiet"];
    let mut args: Vec<String> =
        vec!["run".into(), model("keras_mlp.onnx").to_str().unwrap().to_string(), "--data".into()];
    args.push(vectors.to_str().unwrap().into());
    args.extend(["--out".into(), lm.to_str().unwrap().into(), "--history".into(), lh.to_str().unwrap().into()]);
    args.extend(common_args.iter().map(|s| s.to_string()));
    ok(local_distk(&args.iter().map(String::as_str).collect::<Vec<_>>()), "the local run");
    let mut remote = vec![
        "run",
        "s3://distk/models/keras_mlp.onnx",
        "--data",
        "s3://distk/data/vectors",
        "--out",
        "s3://distk/out/trained.onnx",
        "--history",
        "s3://distk/out/history.json",
        "--history-csv",
        "s3://distk/out/history.csv",
    ];
    remote.extend(common_args);
    ok(s3.distk(&remote), "the S3 run");
    assert_eq!(s3.get("distk", "out/trained.onnx"), std::fs::read(&lm).unwrap(), "the trained models differ");
    let (h_s3, h_local): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&s3.get("distk", "out/history.json")).unwrap(),
        serde_json::from_slice(&std::fs::read(&lh).unwrap()).unwrap(),
    );
    let curve = |h: &serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
        h["epochs"].as_array().unwrap().iter().map(|e| (e["loss"].clone(), e["accuracy"].clone())).collect()
    };
    assert_eq!(curve(&h_s3).len(), 2);
    assert_eq!(curve(&h_s3), curve(&h_local), "the histories differ");
    let csv = String::from_utf8(s3.get("distk", "out/history.csv")).unwrap();
    assert!(csv.lines().count() >= 3, "a header and a line per epoch: {csv}");

    // Evaluate reads a model and a glob of parts from S3 and equals the local evaluation.
    let e_local = json(&ok(
        local_distk(&[
            "evaluate",
            lm.to_str().unwrap(),
            "--data",
            vectors.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ]),
        "local evaluate",
    ));
    for data in ["s3://distk/data/vectors", "s3://distk/data/vectors/part-*.parquet"] {
        let e = json(&ok(
            s3.distk(&["evaluate", "s3://distk/out/trained.onnx", "--data", data, "--device", "cpu", "--json"]),
            "S3 evaluate",
        ));
        assert_eq!(e["loss"], e_local["loss"], "{data}");
        assert_eq!(e["confusion_matrix"], e_local["confusion_matrix"], "{data}");
        assert_eq!(e["rows"], 360, "{data}");
    }

    // A folder in gives a folder of parts out, `_SUCCESS` included; the prefix is not reused.
    let predict = [
        "predict",
        "s3://distk/out/trained.onnx",
        "--data",
        "s3://distk/data/vectors",
        "--out",
        "s3://distk/out/predictions",
        "--keep-cols",
        "id",
        "--device",
        "cpu",
    ];
    ok(s3.distk(&predict), "S3 predict");
    let keys = s3.keys("distk", "out/predictions/");
    assert_eq!(keys.iter().filter(|k| k.ends_with(".parquet")).count(), parts, "{keys:?}");
    assert!(keys.contains(&"out/predictions/_SUCCESS".to_string()), "{keys:?}");
    let again = s3.distk(&predict);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("holds objects already"), "{err}");
    assert_eq!(s3.keys("distk", "out/predictions/"), keys, "nothing was written by the refused run");

    // Transform writes a single file to S3 that reads back as the rows it came from.
    ok(
        s3.distk(&[
            "transform",
            "--data",
            data("digits_test.parquet").to_str().unwrap(),
            "--step",
            "min-max:features:scaled:o_min=0,o_max=16",
            "--out",
            "s3://distk/out/scaled.parquet",
        ]),
        "S3 transform",
    );
    let scaled = local.path().join("scaled.parquet");
    std::fs::write(&scaled, s3.get("distk", "out/scaled.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&scaled).unwrap()).unwrap();
    assert_eq!(parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows(), 360);
}

#[test]
fn parameter_server_snapshots_are_copied_to_s3_and_restore_an_empty_checkpoint_dir() {
    let s3 = start_moto();
    s3.boto("s3.create_bucket(Bucket='distk-ps')");
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let out = dir.path().join("trained.onnx");
    ok(
        s3.distk(&[
            "run",
            model("keras_mlp.onnx").to_str().unwrap(),
            "--data",
            data("digits_train.parquet").to_str().unwrap(),
            "--workers",
            "2",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--quiet",
            "--checkpoint-dir",
            ckpt.to_str().unwrap(),
            "--checkpoint-every",
            "20",
            "--snapshot-copy",
            "s3://distk-ps/run1/",
            "--out",
            out.to_str().unwrap(),
        ]),
        "the distributed run",
    );
    // The last snapshot is in the bucket, byte for byte, with its summary; the log is not.
    let keys = s3.keys("distk-ps", "run1/");
    assert!(keys.contains(&"run1/ps.json".to_string()) && keys.contains(&"run1/state.bin".to_string()), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("wal")), "{keys:?}");
    let snapshot = std::fs::read(ckpt.join("state.bin")).unwrap();
    assert_eq!(s3.get("distk-ps", "run1/state.bin"), snapshot);

    // Another machine: an empty checkpoint directory is filled from the copy on --resume.
    let fresh = dir.path().join("fresh");
    let secrets = dir.path().join("secrets.json");
    ok(local_distk(&["secret", "--secrets", secrets.to_str().unwrap(), "--identity", "u"]), "secret");
    let o = s3.distk(&[
        "ps",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--secrets",
        secrets.to_str().unwrap(),
        "--workers",
        "2",
        "--listen",
        "127.0.0.1:0",
        "--checkpoint-dir",
        fresh.to_str().unwrap(),
        "--resume",
        "--snapshot-copy",
        "s3://distk-ps/run1",
        "--join-timeout",
        "1",
        "--device",
        "cpu",
        "--out",
        dir.path().join("resumed.onnx").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("restored the snapshot"), "{err}");
    assert!(err.contains("resumed from"), "{err}");
    assert_eq!(std::fs::read(fresh.join("state.bin")).unwrap(), snapshot, "the restored snapshot is the copy");
}

#[test]
fn keys_as_spark_and_the_console_write_them_and_ensembles_round_trip() {
    let s3 = start_moto();
    s3.boto("s3.create_bucket(Bucket='distk-keys')");
    // A non-ASCII folder with a space, Spark's escaped partition value, a console folder marker,
    // and a sibling prefix sharing the name's start that holds a file that is not Parquet.
    let base = "data/ünïcode dir";
    let test = data("digits_test.parquet");
    s3.put_file(&test, "distk-keys", &format!("{base}/ts=2020-01-01 00%3A00%3A00/part-00000.parquet"));
    s3.boto(&format!("s3.put_object(Bucket='distk-keys', Key={:?}, Body=b'')", format!("{base}/")));
    s3.boto(&format!(
        "s3.put_object(Bucket='distk-keys', Key={:?}, Body=b'not parquet')",
        format!("{base}2/bad.parquet")
    ));
    let m = model("keras_mlp.onnx");
    let url = format!("s3://distk-keys/{base}");
    let e = json(&ok(
        s3.distk(&["evaluate", m.to_str().unwrap(), "--data", &url, "--device", "cpu", "--json"]),
        "evaluate on escaped keys",
    ));
    assert_eq!(e["rows"], 360);
    // An ensemble's members are written beside the --out name.
    ok(
        s3.distk(&[
            "run",
            m.to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
            "--workers",
            "2",
            "--trainer",
            "ensemble",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            "s3://distk-keys/out/ens.onnx",
        ]),
        "the ensemble run",
    );
    let keys = s3.keys("distk-keys", "out/");
    assert_eq!(keys, vec!["out/ens-0.onnx".to_string(), "out/ens-1.onnx".to_string()]);
}

#[test]
fn missing_objects_and_other_schemes_are_refused_clearly() {
    let s3 = start_moto();
    s3.boto("s3.create_bucket(Bucket='empty')");
    let m = model("keras_mlp.onnx");
    let o = s3.distk(&["evaluate", m.to_str().unwrap(), "--data", "s3://empty/nothing/here", "--device", "cpu"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("s3://empty/nothing/here") && err.contains("no such object"), "{err}");
    let o = s3.distk(&["evaluate", m.to_str().unwrap(), "--data", "s3://no-such-bucket/x.parquet", "--device", "cpu"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("s3://no-such-bucket/x.parquet"), "{err}");
    // An output to a bucket that does not exist fails before any training.
    let o = s3.distk(&[
        "run",
        m.to_str().unwrap(),
        "--data",
        data("digits_test.parquet").to_str().unwrap(),
        "--out",
        "s3://no-such-bucket/m.onnx",
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("s3://no-such-bucket/m.onnx") && err.contains("NoSuchBucket"), "{err}");
    assert!(!err.contains("epoch 1"), "refused before training: {err}");
    // Paths that need a local disk say so.
    for (args, says) in [
        (vec!["--checkpoint-dir", "s3://empty/ckpt"], "--checkpoint-dir s3://empty/ckpt: must be a local path"),
        (vec!["--snapshot-copy", "s3://empty/snap"], "--snapshot-copy copies a parameter server's snapshots"),
    ] {
        let test = data("digits_test.parquet");
        let mut a = vec!["run", m.to_str().unwrap(), "--data", test.to_str().unwrap()];
        a.extend(args);
        let o = s3.distk(&a);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{err}");
    }
    for (url, says) in [("gs://b/train.parquet", "gs:// is not supported"), ("hdfs://nn/train", "HDFS")] {
        let o = s3.distk(&["evaluate", m.to_str().unwrap(), "--data", url, "--device", "cpu"]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says) && err.lines().count() == 1, "{err}");
    }
    // Endpoint and credentials from a profile in the AWS files, not the environment.
    let aws = s3.home.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("credentials"), "[lab]\naws_access_key_id = k\naws_secret_access_key = s\n").unwrap();
    std::fs::write(aws.join("config"), format!("[profile lab]\nregion = eu-west-1\nendpoint_url = {}\n", s3.endpoint))
        .unwrap();
    s3.put_file(&m, "empty", "m.onnx");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_distk-gpu"));
    s3.env(&mut cmd);
    let o = cmd
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env("AWS_PROFILE", "lab")
        .args(["inspect", "s3://empty/m.onnx", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "inspect through the profile: {}", String::from_utf8_lossy(&o.stderr));
}
