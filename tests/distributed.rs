//! Distributed training through the CLI: every trainer with 4 local workers on digits (QUIC over
//! loopback), the parameter server and worker processes of a multi-host run, a worker killed with
//! SIGKILL mid-run, a parameter server killed and resumed from its snapshot, refused peers.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{data, model};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_distk-gpu"))
}

fn distk(args: &[&str]) -> Output {
    bin().args(args).output().expect("run distk-gpu")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The learning test takes this exclusively, every other test shares it: asynchronous trainers
/// learn worse when other tests' hundreds of workers take the two cores from them (staleness
/// grows with the load), so accuracy is measured on a machine this file does not also load.
static CORES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Shares the cores with the other non-learning tests of this file.
fn shared_cores() -> std::sync::RwLockReadGuard<'static, ()> {
    CORES.read().unwrap_or_else(|e| e.into_inner())
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Each trainer with 4 workers, adam, batch 32, 30 epochs, its default window except DOWNPOUR.
/// The learning rate is per trainer: DOWNPOUR adds 4 workers' accumulated deltas (small rate),
/// AGN divides by its window of 12 (larger rate). The thesis tuned them per trainer too.
///
/// DOWNPOUR runs with the thesis' window of 1, not dist-keras' 5: with 5, four workers' deltas
/// computed against a centre up to 20 steps old make the centre oscillate from epoch to epoch
/// (measured on this data: 0.73 to 0.97 at rate 0.001; at 0.0005, 1 final figure in 20 under 0.93),
/// so one final figure is a draw, not a finding. With window 1 at 0.0005, 20 runs ended at 0.961
/// to 0.978. The README's trainer section tells users the same.
#[test]
fn every_trainer_learns_digits_with_four_workers() {
    let _cores = CORES.write().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, f64, &[&str]); 8] = [
        ("downpour", "0.0005", 0.93, &["--communication-window", "1"]),
        ("dynsgd", "0.002", 0.93, &[]),
        ("aeasgd", "0.003", 0.93, &[]),
        ("eamsgd", "0.002", 0.93, &[]),
        ("adag", "0.003", 0.95, &[]),
        ("agn", "0.01", 0.95, &[]),
        ("averaging", "0.003", 0.95, &[]),
        ("ensemble", "0.003", 0.93, &[]),
    ];
    for (trainer, lr, want, extra) in cases {
        let out = dir.path().join(format!("{trainer}.onnx"));
        let hist = dir.path().join(format!("{trainer}.json"));
        let (mlp, train, test) = (model("keras_mlp.onnx"), data("digits_train.parquet"), data("digits_test.parquet"));
        let mut args = vec![
            "run",
            mlp.to_str().unwrap(),
            "--data",
            train.to_str().unwrap(),
            "--validation-data",
            test.to_str().unwrap(),
            "--workers",
            "4",
            "--trainer",
            trainer,
            "--epochs",
            "30",
            "--learning-rate",
            lr,
            "--device",
            "cpu",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            "--history",
            hist.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = distk(&args);
        assert!(o.status.success(), "{trainer}: {}", stderr(&o));
        let h = read_json(&hist);
        let workers = h["worker_reports"].as_array().unwrap();
        assert_eq!(workers.len(), 4);
        for w in workers {
            assert_eq!(w["status"], "done", "{trainer}: worker {}", w["worker"]);
            let steps = w["history"]["steps"].as_array().unwrap();
            assert_eq!(steps.len(), 30 * 12, "{trainer}: 360 rows per worker, batch 32: 12 steps per epoch");
            for key in ["loss", "accuracy", "clock", "staleness", "net_wait_s", "time"] {
                assert!(steps[0].get(key).is_some(), "{trainer}: step records carry {key}");
            }
            let f = w["history"]["net_wait_fraction"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&f));
            if trainer != "ensemble" {
                assert_eq!(
                    w["commits_applied"], w["history"]["commits_acknowledged"],
                    "{trainer}: worker {}",
                    w["worker"]
                );
            }
        }
        if trainer == "ensemble" {
            let acc = h["ensemble_validation"]["accuracy"].as_f64().unwrap();
            assert!(acc >= want, "ensemble averaged accuracy {acc}");
            for i in 0..4 {
                assert!(dir.path().join(format!("ensemble-{i}.onnx")).exists());
            }
            continue;
        }
        let epochs = h["epochs"].as_array().unwrap();
        assert_eq!(epochs.len(), 30, "{trainer}: the centre is validated after every epoch");
        let first = epochs[0]["loss"].as_f64().unwrap();
        let last = h["final_validation"]["loss"].as_f64().unwrap();
        let acc = h["final_validation"]["accuracy"].as_f64().unwrap();
        assert!(last < first * 0.5, "{trainer}: the loss went from {first} to {last}");
        assert!(acc >= want, "{trainer}: centre accuracy {acc} < {want}");
        // The written model is the centre: evaluated again from the file, the same accuracy.
        let v = common::evaluate_json(&out, &data("digits_test.parquet"), "cpu");
        assert!((v["accuracy"].as_f64().unwrap() - acc).abs() < 1e-9, "{trainer}: {v}");
        eprintln!("{trainer}: centre accuracy {acc:.4}, loss {first:.4} -> {last:.4}");
    }
}

/// 512 local workers of one row per step: every connection attempt that times out under the load
/// is retried with backoff within the join deadline, so all of them join, train and finish.
#[test]
fn five_hundred_and_twelve_workers_all_join() {
    let _cores = shared_cores();
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("run.json");
    let o = distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        data("digits_train.parquet").to_str().unwrap(),
        "--validation-data",
        data("digits_test.parquet").to_str().unwrap(),
        "--workers",
        "512",
        "--batch-size",
        "1",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        dir.path().join("m.onnx").to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let h = read_json(&hist);
    assert_eq!(h["failures"].as_array().unwrap().len(), 0, "{}", h["failures"]);
    let done = h["worker_reports"].as_array().unwrap().iter().filter(|w| w["status"] == "done").count();
    assert_eq!(done, 512);
    assert_eq!(h["epochs"].as_array().unwrap().len(), 1);
}

#[test]
fn too_few_rows_for_the_workers_is_a_clear_error() {
    let _cores = shared_cores();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let o = distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        data("digits_test.parquet").to_str().unwrap(),
        "--workers",
        "16",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("fewer than 16 workers x batch size 32"), "{}", stderr(&o));
    assert!(!out.exists());
    let o = distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        data("digits_test.parquet").to_str().unwrap(),
        "--workers",
        "2",
        "--trainer",
        "single",
    ]);
    assert!(stderr(&o).contains("single trainer trains one replica"), "{}", stderr(&o));
    // No workers is refused, not trained on one device.
    let o = distk(&[
        "run",
        model("keras_mlp.onnx").to_str().unwrap(),
        "--data",
        data("digits_test.parquet").to_str().unwrap(),
        "--workers",
        "0",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--workers 0 would train nothing"), "{}", stderr(&o));
    assert!(!out.exists());
}

struct Ps {
    child: Child,
    addr: String,
    sha: String,
    log: std::path::PathBuf,
}

/// A parameter server process; stdout (address and fingerprint) is read here, stderr goes to a file
/// (see [`ps_log`]).
fn start_ps(args: &[&str]) -> Ps {
    let log = std::env::temp_dir().join(format!(
        "distk-ps-{}-{}.log",
        std::process::id(),
        PS_COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let mut child =
        bin().arg("ps").args(args).stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines.next().unwrap().unwrap().trim_start_matches("listening on ").to_string();
    let sha = lines.next().unwrap().unwrap().trim_start_matches("certificate sha256 ").to_string();
    Ps { child, addr, sha, log }
}

static PS_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A worker process; its stderr goes to a file beside its secret (a pipe nobody reads would fill
/// up with its per-epoch lines and block it), read back by [`wait_with_timeout`].
fn start_worker(ps: &Ps, secret: &Path, id: u32, extra: &[&str]) -> Child {
    let log = std::fs::File::create(log_path(secret, id)).unwrap();
    bin()
        .args([
            "worker",
            "--connect",
            &ps.addr,
            "--secret-file",
            secret.to_str().unwrap(),
            "--server-cert-sha256",
            &ps.sha,
        ])
        .args([
            "--data",
            data("digits_train.parquet").to_str().unwrap(),
            "--device",
            "cpu",
            "--worker-id",
            &id.to_string(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn log_path(secret: &Path, id: u32) -> std::path::PathBuf {
    secret.with_extension(format!("worker{id}-{}.log", std::process::id()))
}

fn worker_log(secret: &Path, id: u32) -> String {
    std::fs::read_to_string(log_path(secret, id)).unwrap_or_default()
}

fn wait_with_timeout(mut c: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = c.kill();
            panic!("a process did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    c.wait_with_output().unwrap()
}

/// Waits until worker `id` logged the end of epoch `epoch` (1-based).
fn wait_for_epoch(secret: &Path, id: u32, epoch: u32) {
    let start = Instant::now();
    while !worker_log(secret, id).contains(&format!("epoch {epoch}/")) {
        assert!(start.elapsed() < Duration::from_secs(60), "worker {id} never reached epoch {epoch}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn secrets(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let secret = "4f1c9a8e7d6b5a4938271605f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b";
    let file = dir.join("secrets.json");
    std::fs::write(&file, format!(r#"[{{"secret": "{secret}", "identity": "alice"}}]"#)).unwrap();
    let sf = dir.join("alice.secret");
    std::fs::write(&sf, format!("  {secret}\n")).unwrap();
    (file, sf)
}

/// Three worker processes; one is killed with SIGKILL mid-run. The run completes with the others,
/// names the dead worker, exits 3, and every commit the server acknowledged to a worker was applied
/// exactly once (the server's count per worker equals the worker's count of acknowledgements).
#[test]
fn a_worker_killed_mid_run_is_named_and_the_others_finish() {
    let _cores = shared_cores();
    let dir = tempfile::tempdir().unwrap();
    let (secrets_file, secret) = secrets(dir.path());
    let out = dir.path().join("centre.onnx");
    let hist = dir.path().join("run.json");
    let ps = start_ps(&[
        model("keras_mlp.onnx").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "3",
        "--secrets",
        secrets_file.to_str().unwrap(),
        "--trainer",
        "dynsgd",
        "--epochs",
        "400",
        "--device",
        "cpu",
        "--validation-data",
        data("digits_test.parquet").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ]);
    let w0 = start_worker(&ps, &secret, 0, &[]);
    let mut w1 = start_worker(&ps, &secret, 1, &[]);
    let w2 = start_worker(&ps, &secret, 2, &[]);
    wait_for_epoch(&secret, 1, 5);
    assert!(w1.try_wait().unwrap().is_none(), "worker 1 is still training when it is killed");
    Command::new("kill").args(["-KILL", &w1.id().to_string()]).status().unwrap();
    let _ = w1.wait();
    for (id, w) in [(0, w0), (2, w2)] {
        let o = wait_with_timeout(w, Duration::from_secs(120));
        assert!(o.status.success(), "{}", worker_log(&secret, id));
    }
    let log = ps.log.clone();
    let o = wait_with_timeout(ps.child, Duration::from_secs(60));
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("worker 1 lost"), "{err}");
    assert!(err.contains("the run completed without worker 1 lost"), "{err}");
    assert!(out.exists(), "the centre trained by the others is written");
    let h = read_json(&hist);
    let reports = h["worker_reports"].as_array().unwrap();
    assert_eq!(reports[1]["status"], "lost");
    let mut applied = 0;
    for r in reports {
        applied += r["commits_applied"].as_u64().unwrap();
        if r["status"] == "done" {
            assert_eq!(r["commits_applied"], r["history"]["commits_acknowledged"], "worker {}", r["worker"]);
        }
    }
    assert!(reports[1]["commits_applied"].as_u64().unwrap() > 0, "worker 1 committed before it died");
    assert_eq!(applied, h["clock"].as_u64().unwrap(), "every applied commit is counted once");
    // The epochs the others finished while worker 1's death went unnoticed were validated too.
    let epochs: Vec<u64> = h["epochs"].as_array().unwrap().iter().map(|e| e["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, (0..400).collect::<Vec<_>>(), "every epoch is validated once");
}

/// The parameter server is killed with SIGKILL and restarted with --resume on the same address: it
/// recovers from its snapshot and write-ahead log with the same certificate, the workers reconnect
/// on their own, and the run completes without losing a commit it acknowledged: every worker's
/// count of acknowledgements equals what the server applied from it, and the history records the
/// recovery. Snapshots are rare here (only the initial one), so everything comes back from the log.
#[test]
fn a_resumed_parameter_server_is_rejoined_by_its_workers_and_loses_nothing() {
    let _cores = shared_cores();
    let dir = tempfile::tempdir().unwrap();
    let (secrets_file, secret) = secrets(dir.path());
    let ck = dir.path().join("ck");
    let out = dir.path().join("centre.onnx");
    let hist = dir.path().join("run.json");
    let common = |listen: &str| -> Vec<String> {
        [
            model("keras_mlp.onnx").to_str().unwrap(),
            "--listen",
            listen,
            "--workers",
            "2",
            "--secrets",
            secrets_file.to_str().unwrap(),
            "--trainer",
            "adag",
            "--epochs",
            "150",
            "--device",
            "cpu",
            "--checkpoint-dir",
            ck.to_str().unwrap(),
            "--checkpoint-every",
            "1000000",
            "--out",
            out.to_str().unwrap(),
            "--history",
            hist.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args: Vec<String> = common("127.0.0.1:0");
    let first = start_ps(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let acks: Vec<_> = (0..2).map(|i| dir.path().join(format!("acks{i}.log"))).collect();
    let mut workers: Vec<Child> = (0..2)
        .map(|i| {
            start_worker(
                &first,
                &secret,
                i,
                &["--reconnect-timeout", "60", "--ack-log", acks[i as usize].to_str().unwrap()],
            )
        })
        .collect();
    wait_for_epoch(&secret, 0, 20);
    let mut killed = first.child;
    Command::new("kill").args(["-KILL", &killed.id().to_string()]).status().unwrap();
    let _ = killed.wait();
    for w in &mut workers {
        assert!(w.try_wait().unwrap().is_none(), "the workers are still training when the server dies");
    }
    let snap = read_json(&ck.join("ps.json"));
    assert_eq!(snap["clock"], 0, "only the initial snapshot was written before the kill");
    let mut args = common(&first.addr);
    args.push("--resume".into());
    let second = start_ps(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(second.sha, first.sha, "the resumed server keeps its certificate");
    for (id, w) in workers.into_iter().enumerate() {
        let o = wait_with_timeout(w, Duration::from_secs(120));
        assert!(o.status.success(), "{}", worker_log(&secret, id as u32));
    }
    let log = second.log.clone();
    let o = wait_with_timeout(second.child, Duration::from_secs(60));
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(o.status.success(), "{err}");
    assert!(err.contains(&format!("resumed from {} at clock 0 (snapshot)", ck.display())), "{err}");
    assert!(out.exists());
    let h = read_json(&hist);
    assert_eq!(h["stopped"], "completed");
    let recoveries = h["recoveries"].as_array().unwrap();
    assert_eq!(recoveries.len(), 1, "the history records the recovery");
    let replayed = recoveries[0]["replayed_commits"].as_u64().unwrap();
    assert!(replayed > 0, "the commits since the snapshot came back from the log");
    assert_eq!(recoveries[0]["snapshot_clock"], 0);
    assert_eq!(recoveries[0]["clock"].as_u64().unwrap(), replayed);
    let mut applied = 0;
    for (i, r) in h["worker_reports"].as_array().unwrap().iter().enumerate() {
        assert_eq!(r["status"], "done");
        let acked = r["history"]["commits_acknowledged"].as_u64().unwrap();
        assert_eq!(r["commits_applied"].as_u64().unwrap(), acked, "worker {i}: no acknowledged commit was lost");
        assert_eq!(r["last_seq"].as_u64().unwrap(), acked, "worker {i}: sequence numbers without gaps");
        // The worker's own log of acknowledgements agrees.
        let lines = std::fs::read_to_string(&acks[i]).unwrap();
        let seqs: Vec<u64> = lines.lines().map(|l| l.split(' ').nth(2).unwrap().parse().unwrap()).collect();
        assert_eq!(seqs, (1..=acked).collect::<Vec<_>>(), "worker {i}");
        applied += acked;
    }
    assert_eq!(applied, h["clock"].as_u64().unwrap());
}

/// A second worker process started with the id of a live one is refused with a clear message;
/// the first goes on, and every commit acknowledged to it was applied.
#[test]
fn a_second_worker_with_a_live_id_is_refused() {
    let _cores = shared_cores();
    let dir = tempfile::tempdir().unwrap();
    let (secrets_file, secret) = secrets(dir.path());
    let hist = dir.path().join("run.json");
    let ps = start_ps(&[
        model("keras_mlp.onnx").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--secrets",
        secrets_file.to_str().unwrap(),
        "--trainer",
        "dynsgd",
        "--epochs",
        "400",
        "--device",
        "cpu",
        "--checkpoint-dir",
        dir.path().join("ck").to_str().unwrap(),
        "--out",
        dir.path().join("centre.onnx").to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ]);
    let acks = dir.path().join("acks.log");
    let mut first = start_worker(&ps, &secret, 0, &["--ack-log", acks.to_str().unwrap()]);
    wait_for_epoch(&secret, 0, 3);
    // The same secret under another file name, so the second worker logs to its own file.
    let secret2 = dir.path().join("alice-again.secret");
    std::fs::copy(&secret, &secret2).unwrap();
    let o = wait_with_timeout(start_worker(&ps, &secret2, 0, &["--reconnect-timeout", "3"]), Duration::from_secs(60));
    let log = worker_log(&secret2, 0);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(log.contains("worker id 0 is in use by another worker process"), "{log}");
    assert!(first.try_wait().unwrap().is_none(), "the first worker is still training");
    // End the run early: the first worker dies; what it was acknowledged was applied.
    Command::new("kill").args(["-KILL", &first.id().to_string()]).status().unwrap();
    let _ = first.wait();
    let ps_log = ps.log.clone();
    let o = wait_with_timeout(ps.child, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(3), "{}", std::fs::read_to_string(&ps_log).unwrap());
    let h = read_json(&hist);
    let r = &h["worker_reports"][0];
    let last = r["last_seq"].as_u64().unwrap();
    assert_eq!(r["commits_applied"].as_u64().unwrap(), last, "one process numbered the commits of id 0");
    let acked: Vec<u64> = std::fs::read_to_string(&acks)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(!acked.is_empty());
    assert!(acked.iter().all(|&s| s <= last), "every acknowledged commit was applied (last {last})");
}

#[test]
fn workers_with_a_wrong_secret_or_pin_are_refused_clearly() {
    let _cores = shared_cores();
    let dir = tempfile::tempdir().unwrap();
    let (secrets_file, _) = secrets(dir.path());
    let mut ps = start_ps(&[
        model("keras_mlp.onnx").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--secrets",
        secrets_file.to_str().unwrap(),
        "--join-timeout",
        "30",
    ]);
    let wrong = dir.path().join("wrong.secret");
    std::fs::write(&wrong, "not-the-secret-at-all-0123456789").unwrap();
    let o = wait_with_timeout(start_worker(&ps, &wrong, 0, &[]), Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1));
    let log = worker_log(&wrong, 0);
    assert!(log.contains("refused us: the secret was not accepted"), "{log}");
    let (_, right) = secrets(dir.path());
    let good_sha = ps.sha.clone();
    ps.sha = "00".repeat(32);
    let o = wait_with_timeout(start_worker(&ps, &right, 0, &[]), Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1));
    let log = worker_log(&right, 0);
    assert!(log.contains("not the one we trust"), "{log}");
    ps.sha = good_sha;
    let _ = ps.child.kill();
    let _ = ps.child.wait();
}

fn initializer(path: &Path, name: &str) -> Vec<f32> {
    let m = distk_onnx::OnnxModel::load(path).unwrap();
    let t = m.graph().initializer.iter().find(|t| t.name == name).unwrap();
    distk_onnx::tensor::ConstTensor::from_proto(t).unwrap().as_f32()
}

/// BatchNorm running statistics are part of the centre: they travel with commits and pulls, so the
/// trained centre's running mean moved away from its initial value and the model (evaluated with
/// those statistics) is accurate.
#[test]
fn batchnorm_statistics_travel_with_the_centre() {
    let _cores = shared_cores();
    let dir = tempfile::tempdir().unwrap();
    let bn = common::root().join("tests/fixtures/models/bn_mlp.onnx");
    let out = dir.path().join("bn.onnx");
    let o = distk(&[
        "run",
        bn.to_str().unwrap(),
        "--data",
        data("digits_train.parquet").to_str().unwrap(),
        "--workers",
        "4",
        "--trainer",
        "downpour",
        "--epochs",
        "20",
        "--learning-rate",
        "0.003",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (before, after) = (initializer(&bn, "mean"), initializer(&out, "mean"));
    let moved = before.iter().zip(&after).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(moved > 0.05, "the running mean moved by {moved}");
    let v = common::evaluate_json(&out, &data("digits_test.parquet"), "cpu");
    assert!(v["accuracy"].as_f64().unwrap() >= 0.93, "{v}");
}
