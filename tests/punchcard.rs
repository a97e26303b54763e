//! The Punchcard job server end to end on loopback: secrets, a digits job submitted, waited for,
//! fetched and evaluated; 401 for a wrong or missing secret; 409 for a second job under one
//! secret; 404 for another user's job; cancel within 5 s; malformed and oversized uploads and data
//! paths outside the data root refused while the server keeps serving; records surviving a restart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{data, model};
use distk_gpu::punchcard::client::JobClient;
use distk_gpu::punchcard::client::ServerAccess;

/// The tests that load the machine (the load test, the job-process tests, the API fuzzing) run
/// one at a time, so that the load test's latencies are its own.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_distk-gpu"));
    c.env("DISTK_GPU_CONFIG_DIR", std::env::temp_dir().join(format!("distk-cfg-{}", std::process::id())));
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Server {
    child: Child,
    url: String,
    sha: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, state: &Path) -> Server {
    start_with(dir, state, None, &[])
}

/// [`start`] with the server's soft limit of open files lowered to `soft_nofile` first, and
/// `extra` arguments.
fn start_with(dir: &Path, state: &Path, soft_nofile: Option<u64>, extra: &[&str]) -> Server {
    // One log per start: a restarted server keeps the killed one's log.
    static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let log = std::fs::File::create(dir.join(format!("server-{}-{n}.log", std::process::id()))).unwrap();
    let mut cmd = bin();
    if let Some(soft) = soft_nofile {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and calls only getrlimit and
        // setrlimit, which are async-signal-safe, on a stack-local struct.
        unsafe {
            cmd.pre_exec(move || {
                let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                l.rlim_cur = soft.min(l.rlim_max);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .args(["punchcard", "--secrets"])
        .arg(dir.join("secrets.json"))
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state)
        .arg("--data-root")
        .arg(dir.join("root"))
        .args(["--max-workers", "4", "--device", "cpu"])
        .args(if extra.contains(&"--max-upload-mb") { &[][..] } else { &["--max-upload-mb", "1"][..] })
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap().trim_start_matches("listening on ").to_string();
    let sha = lines.next().unwrap().unwrap().trim_start_matches("certificate sha256 ").to_string();
    Server { child, url, sha }
}

fn secret(dir: &Path, who: &str) -> PathBuf {
    let o = bin().args(["secret", "--identity", who, "--secrets"]).arg(dir.join("secrets.json")).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let s = out.lines().last().unwrap().to_string();
    assert_eq!(s.len(), 64, "256 bits as hex");
    assert!(s.chars().all(|c| c.is_ascii_hexdigit()));
    let f = dir.join(format!("{who}.secret"));
    std::fs::write(&f, format!("{s}\n")).unwrap();
    f
}

fn client_args(s: &Server, secret: &Path) -> Vec<String> {
    vec![
        "--server".into(),
        s.url.clone(),
        "--secret-file".into(),
        secret.to_str().unwrap().into(),
        "--server-cert-sha256".into(),
        s.sha.clone(),
    ]
}

fn submit(s: &Server, secret: &Path, name: &str, epochs: &str, wait: bool) -> Output {
    let mut c = bin();
    c.arg("submit").arg(model("keras_mlp.onnx")).args(client_args(s, secret));
    c.args(["--job-name", name, "--data", "digits_train.parquet", "--validation-data", "digits_test.parquet"]);
    c.args(["--workers", "2", "--epochs", epochs, "--learning-rate", "0.003", "--trainer", "adag"]);
    if wait {
        c.arg("--wait");
    }
    c.output().unwrap()
}

fn job(s: &Server, secret: &Path, action: &str, id: Option<&str>, extra: &[&str]) -> Output {
    let mut c = bin();
    c.args(["job", action]);
    if let Some(id) = id {
        c.arg(id);
    }
    c.args(client_args(s, secret)).args(extra).output().unwrap()
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or("").to_string()
}

fn state_of(s: &Server, secret: &Path, id: &str) -> String {
    status_of(s, secret, id)["state"].as_str().unwrap_or("?").to_string()
}

#[test]
fn jobs_are_submitted_fetched_isolated_cancelled_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for f in ["digits_train.parquet", "digits_test.parquet"] {
        std::fs::copy(data(f), root.join(f)).unwrap();
    }
    std::fs::copy(data("digits_test.parquet"), dir.path().join("outside.parquet")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.parquet"), root.join("link.parquet")).unwrap();
    let alice = secret(dir.path(), "alice");
    use std::os::unix::fs::PermissionsExt;
    let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // `secret --out` writes the bare secret to a new 0600 file (what the README tells users to run);
    // an existing file is never overwritten.
    let bob = dir.path().join("bob.secret");
    let o = bin()
        .args(["secret", "--identity", "bob", "--out"])
        .arg(&bob)
        .arg("--secrets")
        .arg(dir.path().join("secrets.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "the secret is not printed with --out");
    assert_eq!(mode_of(&bob), 0o600, "the holder's secret file is private");
    let written = std::fs::read_to_string(&bob).unwrap();
    assert_eq!(written.trim().len(), 64);
    assert!(std::fs::read_to_string(dir.path().join("secrets.json")).unwrap().contains(written.trim()));
    let again = bin()
        .args(["secret", "--identity", "eve", "--out"])
        .arg(&bob)
        .arg("--secrets")
        .arg(dir.path().join("secrets.json"))
        .output()
        .unwrap();
    assert!(!again.status.success() && stderr(&again).contains("exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&bob).unwrap(), written, "bob's file is untouched");
    assert!(!std::fs::read_to_string(dir.path().join("secrets.json")).unwrap().contains("eve"));
    assert_eq!(mode_of(&dir.path().join("secrets.json")), 0o600, "the secrets file is private");
    let state = dir.path().join("state");
    let server = start(dir.path(), &state);

    // A digits job, waited for, fetched, evaluated.
    let o = submit(&server, &alice, "digits", "10", true);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = last_line(&o);
    assert_eq!(id.len(), 16, "the job id alone on the last line: {id}");
    let out = dir.path().join("fetched");
    let o = job(&server, &alice, "fetch", Some(&id), &["--out-dir", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fetched = out.join(format!("digits-{id}.onnx"));
    // The server's state is private whatever the umask: folders 0700, files 0600 (the uploaded
    // model, the record, the trained model and history).
    let job_dir = state.join("jobs").join(&id);
    for d in [state.clone(), state.join("jobs"), job_dir.clone()] {
        assert_eq!(mode_of(&d), 0o700, "{}", d.display());
    }
    let files: Vec<_> = std::fs::read_dir(&job_dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(
        files.iter().any(|f| f.ends_with("job.json")) && files.iter().any(|f| f.ends_with("trained.onnx")),
        "{files:?}"
    );
    for f in &files {
        if f.is_file() {
            assert_eq!(mode_of(f), 0o600, "{}", f.display());
        }
    }
    assert!(out.join(format!("digits-{id}.history.json")).exists());
    let v = common::evaluate_json(&fetched, &data("digits_test.parquet"), "cpu");
    assert!(v["accuracy"].as_f64().unwrap() >= 0.9, "{v}");

    // Wrong and missing secrets: 401.
    let wrong = dir.path().join("wrong.secret");
    std::fs::write(&wrong, "0".repeat(64)).unwrap();
    let o = job(&server, &wrong, "list", None, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
    let args = ServerAccess {
        server: server.url.clone(),
        secret_file: alice.clone(),
        server_cert_sha256: Some(server.sha.clone()),
        ca: None,
    };
    let raw = JobClient::new(&args).unwrap();
    let missing = raw.send_unauthenticated(hyper::Method::GET, "/api/jobs").unwrap();
    assert_eq!(missing.status.as_u16(), 401);

    // Another user's job: 404.
    let o = job(&server, &bob, "status", Some(&id), &[]);
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));

    // A long job; a second one under the same secret: 409 naming the first.
    let o = submit(&server, &alice, "long", "100000", false);
    assert!(o.status.success(), "{}", stderr(&o));
    let long = last_line(&o);
    let o = submit(&server, &alice, "second", "1", false);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("409") && stderr(&o).contains(&long), "{}", stderr(&o));
    // Bob's secret is free.
    let o = submit(&server, &bob, "bobs", "2", true);
    assert!(o.status.success(), "{}", stderr(&o));

    // Bad input while the long job runs: 4xx with a message, and the server goes on.
    let spec_ok = |data: &str| {
        serde_json::json!({"name": "x", "workers": 1, "data": data, "validation_data": null,
            "trainer": {"trainer": "adag", "communication_window": null, "rho": null, "elastic_lr": null,
                "momentum": null, "parallelism_factor": 1, "no_overlap": false},
            "job": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "learning_rate": null, "optimizer_args": "",
                "loss": null, "features_col": "features", "label_col": "label", "shuffle": false, "seed": 0,
                "bn_momentum": 0.99, "add_missing_biases": false, "dropout": []}})
        .to_string()
    };
    let bob_args = ServerAccess { secret_file: bob.clone(), ..args.clone() };
    let bob_raw = JobClient::new(&bob_args).unwrap();
    let m = model("keras_mlp.onnx");
    let a = bob_raw.submit("{not json", &m, None).unwrap();
    assert_eq!(a.status.as_u16(), 400);
    assert!(String::from_utf8_lossy(&a.body).contains("not valid JSON"));
    for (path, why) in [("../outside.parquet", ".."), ("/etc/passwd", "absolute"), ("link.parquet", "symbolic link")] {
        let a = bob_raw.submit(&spec_ok(path), &m, None).unwrap();
        assert_eq!(a.status.as_u16(), 400, "{path}");
        assert!(String::from_utf8_lossy(&a.body).contains(why), "{path}: {}", String::from_utf8_lossy(&a.body));
    }
    let big = dir.path().join("big.csv");
    std::fs::write(&big, vec![b'1'; 2 << 20]).unwrap();
    let a = bob_raw
        .submit(&spec_ok("digits_train.parquet").replace("\"digits_train.parquet\"", "null"), &m, Some(&big))
        .unwrap();
    assert_eq!(a.status.as_u16(), 413, "{}", String::from_utf8_lossy(&a.body));
    let a = bob_raw.send(hyper::Method::POST, "/api/jobs", b"plain bytes".to_vec()).unwrap();
    assert_eq!(a.status.as_u16(), 400);
    let o = job(&server, &bob, "list", None, &[]);
    assert!(o.status.success(), "the server still serves: {}", stderr(&o));

    // Cancel stops the long job within 5 seconds.
    assert_eq!(state_of(&server, &alice, &long), "running");
    let o = job(&server, &alice, "cancel", Some(&long), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = Instant::now();
    while state_of(&server, &alice, &long) == "running" {
        assert!(t.elapsed() < Duration::from_secs(5), "the job still runs after 5 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state_of(&server, &alice, &long), "cancelled");

    // A restart: finished jobs are still there and fetchable.
    drop(server);
    let server = start(dir.path(), &state);
    assert_eq!(state_of(&server, &alice, &id), "succeeded");
    let again = dir.path().join("again");
    let o = job(&server, &alice, "fetch", Some(&id), &["--out-dir", again.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(again.join(format!("digits-{id}.onnx"))).unwrap(), std::fs::read(&fetched).unwrap());
    // Trust on first use: remembered, then a changed certificate is refused before the secret goes.
    let cfg = dir.path().join("cfg");
    let tofu = || {
        bin()
            .env("DISTK_GPU_CONFIG_DIR", &cfg)
            .args(["job", "list", "--server", &server.url, "--secret-file", alice.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let o = tofu();
    assert!(o.status.success() && stderr(&o).contains("trusting"), "{}", stderr(&o));
    let o = tofu();
    assert!(o.status.success() && !stderr(&o).contains("trusting"), "{}", stderr(&o));
    let known = cfg.join("known_servers.json");
    let text = std::fs::read_to_string(&known).unwrap().replace(&server.sha, &"ab".repeat(32));
    std::fs::write(&known, text).unwrap();
    let o = tofu();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("changed") && stderr(&o).contains("refusing to send the secret"), "{}", stderr(&o));

    let o = job(&server, &alice, "delete", Some(&long), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&job(&server, &alice, "status", Some(&long), &[])).contains("404"));
}

#[test]
fn the_server_raises_its_open_files_limit_and_caps_job_specs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let alice = secret(dir.path(), "alice");
    // Started under a low soft limit of open files (Debian's default is 1024), it raises it to
    // the hard limit.
    let mut ours = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through the valid, exclusive pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut ours) }, 0);
    let low = 1024.min(ours.rlim_max / 2);
    let server = start_with(dir.path(), &dir.path().join("state"), Some(low), &["--max-upload-mb", "8"]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft == hard: {line}");
    assert_ne!(numbers[0], low.to_string(), "{line}");

    let access = |secret_file: &Path| ServerAccess {
        server: server.url.clone(),
        secret_file: secret_file.to_path_buf(),
        server_cert_sha256: Some(server.sha.clone()),
        ca: None,
    };
    // A job spec above 1 MiB is refused by its own limit (413 naming it), not held in memory,
    // though the upload limit (8 MiB here) would take it.
    let client = JobClient::new(&access(&alice)).unwrap();
    let spec = format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 19));
    let a = client.submit(&spec, &model("keras_mlp.onnx"), None).unwrap();
    assert_eq!(a.status.as_u16(), 413);
    let body = String::from_utf8_lossy(&a.body);
    assert!(body.contains("the job spec's limit of 1 MiB"), "{body}");
    let a = client.send(hyper::Method::GET, "/api/jobs", Vec::new()).unwrap();
    assert!(a.status.is_success(), "the server still answers");
}

/// The softmax regression of the digits, made to need gigabytes while it trains: its logits are
/// tiled 200,000 times and averaged back (`[N, 10]` -> `[N, 2e6]` -> `[N, 2e5, 10]` -> mean): each
/// tensor stays under the importer's cap, together they need more than a gigabyte.
/// The file is a few hundred bytes and imports; only training asks for the memory.
fn memory_hungry_model() -> Vec<u8> {
    use common::onnx_pb::{attr_i, attr_ints, ints, model_bytes, node, tensor, value};
    use tract_onnx::pb;
    let graph = pb::GraphProto {
        name: "memory-hungry".into(),
        node: vec![
            node("Gemm", &["x", "w", "b"], "logits", vec![]),
            node("Tile", &["logits", "repeats"], "tiled", vec![]),
            node("Reshape", &["tiled", "shape"], "grid", vec![]),
            node("ReduceMean", &["grid"], "mean", vec![attr_ints("axes", &[1]), attr_i("keepdims", 0)]),
            node("Softmax", &["mean"], "probs", vec![]),
        ],
        initializer: vec![
            tensor("w", &[64, 10], vec![0.01; 640]),
            tensor("b", &[10], vec![0.0; 10]),
            ints("repeats", &[1, 200_000]),
            ints("shape", &[-1, 200_000, 10]),
        ],
        input: vec![value("x", 1, &[None, Some(64)])],
        output: vec![value("probs", 1, &[None, Some(10)])],
        ..Default::default()
    };
    model_bytes(graph)
}

fn status_of(s: &Server, secret: &Path, id: &str) -> serde_json::Value {
    let o = job(s, secret, "status", Some(id), &[]);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

/// Processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// Each job trains in its own process under the server's limits: a job whose model needs more
/// memory than the job may use fails alone with that reason while another user's job goes on; a
/// job past its CPU time is killed and fails alone; a server killed mid-job takes its job
/// processes with it, and after the restart the job resumes from its checkpoint and from the
/// epochs it had finished; a cancel survives a restart.
#[test]
fn jobs_fail_alone_and_a_killed_servers_jobs_resume() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for f in ["digits_train.parquet", "digits_test.parquet"] {
        std::fs::copy(data(f), root.join(f)).unwrap();
    }
    let (alice, bob) = (secret(dir.path(), "alice"), secret(dir.path(), "bob"));

    // A job past its CPU time (2 s here) is killed; the server records why and goes on.
    let server = start_with(dir.path(), &dir.path().join("state-cpu"), None, &["--job-max-cpu-hours", "0.0003"]);
    let o = submit(&server, &alice, "endless", "100000", false);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = last_line(&o);
    let t = Instant::now();
    while state_of(&server, &alice, &id) == "running" {
        assert!(t.elapsed() < Duration::from_secs(60), "a job past its CPU time still runs after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = status_of(&server, &alice, &id);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap_or("").starts_with("the job used up its CPU time of 2 s"), "{v}");
    assert!(job(&server, &alice, "list", None, &[]).status.success(), "the server goes on");
    drop(server);

    let state = dir.path().join("state");
    let limit = ["--job-max-memory-mb", "400"];
    let server = start_with(dir.path(), &state, None, &limit);
    // Bob's long job runs while Alice's job is refused for its memory.
    let o = submit(&server, &bob, "long", "100000", false);
    assert!(o.status.success(), "{}", stderr(&o));
    let long = last_line(&o);
    let hungry = dir.path().join("hungry.onnx");
    std::fs::write(&hungry, memory_hungry_model()).unwrap();
    let mut c = bin();
    c.arg("submit").arg(&hungry).args(client_args(&server, &alice));
    c.args(["--job-name", "hungry", "--data", "digits_train.parquet", "--workers", "1", "--epochs", "1"]);
    let o = c.output().unwrap();
    assert!(o.status.success(), "accepted: it imports: {}", stderr(&o));
    let id = last_line(&o);
    let t = Instant::now();
    while state_of(&server, &alice, &id) == "running" {
        assert!(t.elapsed() < Duration::from_secs(60), "the memory-hungry job still runs after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = status_of(&server, &alice, &id);
    assert_eq!(v["state"], "failed", "{v}");
    let why = v["error"].as_str().unwrap_or("");
    // Refused by name before anything is allocated (the importer sizes the tiled tensor against
    // the job's budget), not aborted.
    assert!(
        why.starts_with("worker 0: node `tiled` (Tile): a tensor of 64000000 elements takes more than a quarter of the memory budget of 400 MiB (--max-memory)"),
        "{why}"
    );
    assert_eq!(state_of(&server, &bob, &long), "running", "Bob's job goes on");

    // The server is killed while Bob's job runs, once it has finished some epochs.
    let epochs_done = |server: &Server| status_of(server, &bob, &long)["progress"]["epochs_done"].as_u64().unwrap_or(0);
    let t = Instant::now();
    let done_before = loop {
        let done = epochs_done(&server);
        if done >= 3 {
            break done;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "3 epochs take more than 120 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let job_dir = state.join("jobs").join(&long);
    assert_eq!(processes_with(job_dir.to_str().unwrap()).len(), 1, "one process trains the job");
    drop(server);
    let t = Instant::now();
    while !processes_with(job_dir.to_str().unwrap()).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5), "the job's process outlived its server by 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Restarted, the server resumes the job from its checkpoint and its epochs go on.
    let server = start_with(dir.path(), &state, None, &limit);
    let v = status_of(&server, &bob, &long);
    assert_eq!((v["state"].as_str(), v["resumes"].as_u64()), (Some("running"), Some(1)), "{v}");
    let t = Instant::now();
    while epochs_done(&server) <= done_before + 1 {
        assert_eq!(state_of(&server, &bob, &long), "running");
        assert!(t.elapsed() < Duration::from_secs(120), "the resumed job finished no epoch in 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(job_dir.join("job.log")).unwrap();
    let resumed = log.lines().find(|l| l.starts_with("resumed from")).unwrap_or_else(|| panic!("{log}"));
    let clock: u64 = resumed.split("replayed: clock ").nth(1).and_then(|r| r.split(' ').next()?.parse().ok()).unwrap();
    assert!(clock > 0, "it resumed from the commits it had: {resumed}");
    let o = job(&server, &bob, "cancel", Some(&long), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = Instant::now();
    while state_of(&server, &bob, &long) == "running" {
        assert!(t.elapsed() < Duration::from_secs(30), "the cancelled job still runs after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state_of(&server, &bob, &long), "cancelled");
    // The resumed workers trained only the epochs not finished before the kill.
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job_dir.join("history.json")).unwrap()).unwrap();
    let reports = history["worker_reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    for r in reports {
        let first = r["history"]["steps"][0]["epoch"].as_u64();
        assert!(first.is_some_and(|e| e >= done_before), "worker {} began again at epoch {first:?}", r["worker"]);
    }
    let out = dir.path().join("fetched");
    let o = job(&server, &bob, "fetch", Some(&long), &["--out-dir", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = common::evaluate_json(&out.join(format!("long-{long}.onnx")), &data("digits_test.parquet"), "cpu");
    assert!(v["accuracy"].as_f64().unwrap() >= 0.9, "{v}");

    // A cancel is kept: a server killed right after it does not resume the job.
    let o = submit(&server, &bob, "again", "100000", false);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = last_line(&o);
    let t = Instant::now();
    while status_of(&server, &bob, &again)["progress"]["epochs_done"].as_u64().unwrap_or(0) < 1 {
        assert!(t.elapsed() < Duration::from_secs(60), "no epoch in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(job(&server, &bob, "cancel", Some(&again), &[]).status.success());
    // The cancel is on disk before the job has ended (what a restart reads).
    let record = std::fs::read_to_string(state.join("jobs").join(&again).join("job.json")).unwrap();
    assert!(record.contains("\"cancel_requested\": true"), "{record}");
    drop(server);
    let server = start_with(dir.path(), &state, None, &limit);
    assert_eq!(state_of(&server, &bob, &again), "cancelled");
    // One server per state directory.
    let mut second = bin()
        .args(["punchcard", "--secrets"])
        .arg(dir.path().join("secrets.json"))
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while second.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(20) {
            let _ = second.kill();
            panic!("a second server on the same state directory still runs after 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut second = second.wait_with_output().unwrap();
    second.stderr.truncate(2000);
    assert!(
        !second.status.success() && stderr(&second).contains("another job server uses the state directory"),
        "{}",
        stderr(&second)
    );
}

/// Raises this process's soft limit of open files to its hard limit; returns it.
fn raise_own_open_files() -> u64 {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through the valid, exclusive pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
    l.rlim_cur = l.rlim_max;
    // SAFETY: setrlimit reads one rlimit through the valid pointer; soft up to hard is allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) }, 0);
    l.rlim_cur
}

/// The job server under load (bounded, on loopback): 2,560 idle connections from eight other
/// addresses, each held to the per-address limit (256) and the rest closed at once, and 150
/// clients sending requests without end, while an authenticated user's requests are answered
/// within a second. Oversized headers get 431, an upload declared past the limit a 413 before
/// its body is read, and an upload past the identity's storage a 413.
#[test]
fn the_server_under_load_keeps_answering_and_refuses_oversized_requests() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let (alice, mallory) = (secret(dir.path(), "alice"), secret(dir.path(), "mallory"));
    // The server's default of 256 connections per address, lower where this machine's open-files
    // limit cannot hold eight addresses' worth twice (the server's ends and the test's).
    let limit = raise_own_open_files();
    let per_address = 256.min(limit.saturating_sub(600) / 16) as usize;
    assert!(per_address >= 32, "the open-files limit {limit} is too low for this test");
    let attempts = per_address + per_address / 4;
    // Clients sending requests from the user's own address, below its limit.
    let flooders = 150.min(per_address - 8);
    let cap = per_address.to_string();
    let args = ["--max-connections-per-address", &cap, "--max-stored-mb-per-identity", "1"];
    let server = start_with(dir.path(), &dir.path().join("state"), None, &args);
    let access = |secret_file: &Path| ServerAccess {
        server: server.url.clone(),
        secret_file: secret_file.to_path_buf(),
        server_cert_sha256: Some(server.sha.clone()),
        ca: None,
    };
    let addr: std::net::SocketAddr = server.url.trim_start_matches("https://").parse().unwrap();
    // Alice's requests, timed: first on the idle server, the baseline.
    let client = JobClient::new(&access(&alice)).unwrap();
    let timed = || {
        let mut times: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let a = client.send(hyper::Method::GET, "/api/jobs", Vec::new()).unwrap();
                assert!(a.status.is_success(), "{}", a.status);
                t.elapsed()
            })
            .collect();
        times.sort();
        times
    };
    let baseline = timed();

    // Idle connections from 127.0.0.2-9, a quarter more than each may hold.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let idle: Vec<Vec<std::net::TcpStream>> = rt.block_on(async {
        let mut all = Vec::new();
        for a in 2..10u8 {
            let mut from_a = Vec::new();
            for k in 0..attempts {
                // Paced, so the listen queue never overflows (an overflowing queue leaves
                // connections the server accepts only seconds later, when the client retries).
                if k % 50 == 49 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(([127, 0, 0, a], 0).into()).unwrap();
                // As a std stream (still non-blocking), a read asks the kernel, not a runtime's cache.
                from_a.push(socket.connect(addr).await.unwrap().into_std().unwrap());
            }
            all.push(from_a);
        }
        all
    });
    // Connections past the per-address limit are closed by the server as it accepts them.
    let held = |conns: &Vec<std::net::TcpStream>| {
        conns
            .iter()
            .filter(|c| {
                let mut b = [0u8; 1];
                matches!(std::io::Read::read(&mut &**c, &mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count()
    };
    let t = Instant::now();
    loop {
        let counts: Vec<usize> = idle.iter().map(held).collect();
        if counts.iter().all(|&n| n == per_address) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "connections held per address after 5 s: {counts:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Clients with a wrong secret, sending requests without end.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let wrong = dir.path().join("wrong.secret");
    std::fs::write(&wrong, "0".repeat(64)).unwrap();
    let flood: Vec<_> = (0..flooders)
        .map(|_| {
            let (stop, answered, access) = (stop.clone(), answered.clone(), access(&wrong));
            std::thread::spawn(move || {
                let c = JobClient::new(&access).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(a) = c.send(hyper::Method::GET, "/api/jobs", Vec::new()) {
                        assert_eq!(a.status.as_u16(), 401);
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // Alice is answered meanwhile.
    let times = timed();
    let flooded = answered.load(std::sync::atomic::Ordering::Relaxed);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in flood {
        t.join().unwrap();
    }
    eprintln!(
        "under load ({} idle connections attempted from 8 addresses, {} held; {flooders} clients, {flooded} answers to them): \
         authenticated GET /api/jobs median {:?}, max {:?} (idle server: median {:?}, max {:?})",
        8 * attempts,
        8 * per_address,
        times[times.len() / 2],
        times[times.len() - 1],
        baseline[baseline.len() / 2],
        baseline[baseline.len() - 1]
    );
    assert!(times[times.len() - 1] < Duration::from_secs(1), "{times:?}");
    drop(idle);

    // A 200 KB secret: 431, not silence.
    let long = dir.path().join("long.secret");
    std::fs::write(&long, "a".repeat(200 << 10)).unwrap();
    let a = JobClient::new(&access(&long)).unwrap().send(hyper::Method::GET, "/api/jobs", Vec::new()).unwrap();
    assert_eq!(a.status.as_u16(), 431, "{}", String::from_utf8_lossy(&a.body));

    // An 80 MB upload declared past the 1 MiB limit: 413 before the body is read.
    let spec = serde_json::json!({"name": "x", "workers": 1, "data": null, "validation_data": null,
        "trainer": {"trainer": "adag", "communication_window": null, "rho": null, "elastic_lr": null,
            "momentum": null, "parallelism_factor": 1, "no_overlap": false},
        "job": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "learning_rate": null, "optimizer_args": "",
            "loss": null, "features_col": "features", "label_col": "label", "shuffle": false, "seed": 0,
            "bn_momentum": 0.99, "add_missing_biases": false, "dropout": []}})
    .to_string();
    let big = dir.path().join("big.csv");
    std::fs::write(&big, vec![b'1'; 80 << 20]).unwrap();
    let mallory_client = JobClient::new(&access(&mallory)).unwrap();
    let t = Instant::now();
    let a = mallory_client.submit(&spec, &model("keras_mlp.onnx"), Some(&big)).unwrap();
    assert_eq!(a.status.as_u16(), 413, "{}", String::from_utf8_lossy(&a.body));
    assert!(String::from_utf8_lossy(&a.body).contains("exceeds the server's limit of 1 MiB"));
    eprintln!("80 MB upload refused in {:?}", t.elapsed());
    std::fs::remove_file(&big).unwrap();

    // Storage per identity (1 MiB here): a finished job keeps its upload, model and history (its
    // checkpoints are removed when it ends); an upload past what is left is refused.
    let a = mallory_client.submit(&spec, &model("keras_mlp.onnx"), Some(&data("digits_train.parquet"))).unwrap();
    assert_eq!(a.status.as_u16(), 201, "{}", String::from_utf8_lossy(&a.body));
    let id = serde_json::from_slice::<serde_json::Value>(&a.body).unwrap()["id"].as_str().unwrap().to_string();
    let t = Instant::now();
    while state_of(&server, &mallory, &id) == "running" {
        assert!(t.elapsed() < Duration::from_secs(60), "a one-epoch job still runs after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state_of(&server, &mallory, &id), "succeeded");
    let job_dir = dir.path().join("state/jobs").join(&id);
    assert!(!job_dir.join("checkpoints").exists(), "a finished job's checkpoints are removed");
    let part = dir.path().join("part.csv");
    std::fs::write(&part, vec![b'1'; 900 << 10]).unwrap();
    let a = mallory_client.submit(&spec, &model("keras_mlp.onnx"), Some(&part)).unwrap();
    let body = String::from_utf8_lossy(&a.body);
    assert_eq!(a.status.as_u16(), 413, "{body}");
    assert!(body.contains("--max-stored-mb-per-identity") && body.contains("job delete"), "{body}");
    assert_eq!(std::fs::read_dir(dir.path().join("state/jobs")).unwrap().count(), 1, "the refused upload kept nothing");
    let o = job(&server, &alice, "list", None, &[]);
    assert!(o.status.success(), "the server still serves: {}", stderr(&o));
}

/// Sends `request` on a new TLS connection, closes the sending side, and reads the answer until
/// the server closes (at most 10 s, else a hang): the status, or None when it closed without one.
fn raw_exchange(addr: std::net::SocketAddr, sha: &str, request: Vec<u8>) -> Result<Option<u16>, String> {
    raw_answer(addr, sha, request).map(|(status, _)| status)
}

/// [`raw_exchange`] with the answer's text.
fn raw_answer(addr: std::net::SocketAddr, sha: &str, request: Vec<u8>) -> Result<(Option<u16>, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pin = distk_net::tls::parse_sha256(sha).unwrap();
    let config = distk_net::tls::Trust::Pinned(pin).client_config(&[b"http/1.1"]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        // The server may answer and close before all is sent: a failed write is no failure.
        let _ = tls.write_all(&request).await;
        let _ = tls.shutdown().await;
        let mut answer = Vec::new();
        // A read error (a reset after the answer) keeps what was read.
        if tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await.is_err() {
            return Err("no answer and no close within 10 s (a hang)".into());
        }
        let text = String::from_utf8_lossy(&answer);
        let status = text.strip_prefix("HTTP/1.1 ").and_then(|t| t.get(..3)).and_then(|c| c.parse().ok());
        Ok((status, text.into_owned()))
    })
}

/// The job API's fuzz harness: mutated requests (request lines, headers, secrets, multipart
/// submissions with a spec, a model and data, cancels and deletes) on live TLS connections are
/// answered with a 4xx or closed, never a 5xx, a hang or a crash; every 50 cases the server still
/// answers its user. 300 cases by default (`DISTK_FUZZ_CASES`).
#[test]
fn the_job_api_survives_mutated_requests() {
    let _heavy = heavy();
    use common::mutate::{Mutator, cases};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let alice = secret(dir.path(), "alice");
    let key = std::fs::read_to_string(&alice).unwrap().trim().to_string();
    let mut server = start(dir.path(), &dir.path().join("state"));
    let addr: std::net::SocketAddr = server.url.trim_start_matches("https://").parse().unwrap();
    let access = ServerAccess {
        server: server.url.clone(),
        secret_file: alice.clone(),
        server_cert_sha256: Some(server.sha.clone()),
        ca: None,
    };
    let client = JobClient::new(&access).unwrap();
    let head = |method: &str, path: &str, extra: &str, body: &[u8]| -> Vec<u8> {
        let mut r = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    // A submission the server refuses only for its data path (outside the data root), so that
    // mutations reach every field's parser without starting jobs.
    let boundary = "fuzzboundary";
    let spec = r#"{"name": "f", "workers": 1, "data": "../x.parquet", "validation_data": null,
        "trainer": {"trainer": "adag", "communication_window": null, "rho": null, "elastic_lr": null,
            "momentum": null, "parallelism_factor": 1, "no_overlap": false},
        "job": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "learning_rate": null, "optimizer_args": "",
            "loss": null, "features_col": "features", "label_col": "label", "shuffle": false, "seed": 0,
            "bn_momentum": 0.99, "add_missing_biases": false, "dropout": []}}"#;
    let mut form = Vec::new();
    for (name, file, bytes) in [
        ("spec", None, spec.as_bytes().to_vec()),
        ("model", Some("model.onnx"), memory_hungry_model()),
        ("data", Some("d.csv"), b"f0,f1,label\n0.5,1.5,1\n".to_vec()),
    ] {
        let fname = file.map_or(String::new(), |f| format!("; filename=\"{f}\""));
        form.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{fname}\r\n\r\n").as_bytes(),
        );
        form.extend_from_slice(&bytes);
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let seeds = [
        head("GET", "/api/jobs", "", b""),
        head("POST", "/api/jobs", &format!("Content-Type: multipart/form-data; boundary={boundary}\r\n"), &form),
        head("POST", "/api/jobs/0123456789abcdef/cancel", "", b""),
        head("DELETE", "/api/jobs/0123456789abcdef", "", b""),
        head("GET", "/api/jobs/0123456789abcdef/model", "Connection: close\r\n", b""),
    ];
    let seed_status: Vec<Option<u16>> =
        seeds.iter().map(|s| raw_exchange(addr, &server.sha, s.clone()).unwrap()).collect();
    assert_eq!(seed_status, [Some(200), Some(400), Some(404), Some(404), Some(404)], "the seeds' answers");
    // An upload without a declared length (chunked) past the 1 MiB limit: refused while it streams,
    // with a 413 the client reads, and nothing kept.
    let mut big_form = form.clone();
    let at = big_form.len() - format!("--{boundary}--\r\n").len();
    let mut part =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"big.csv\"\r\n\r\n")
            .into_bytes();
    part.extend(std::iter::repeat_n(b'1', 2 << 20));
    part.extend_from_slice(b"\r\n");
    big_form.splice(at..at, part);
    let mut chunked = format!(
        "POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        big_form.len()
    )
    .into_bytes();
    chunked.extend_from_slice(&big_form);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(raw_exchange(addr, &server.sha, chunked).unwrap(), Some(413));
    assert!(std::fs::read_dir(dir.path().join("state/jobs")).unwrap().next().is_none(), "nothing kept");
    let n = cases(300);
    let mut m = Mutator::new(48);
    let mut by_status = std::collections::BTreeMap::<String, usize>::new();
    for case in 0..n {
        let request = m.mutate(&seeds[case % seeds.len()]);
        let (status, text) = raw_answer(addr, &server.sha, request).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert!(status.is_none_or(|s| s < 500), "case {case}: answered {text}");
        *by_status.entry(status.map_or("closed".into(), |s| s.to_string())).or_default() += 1;
        if case % 50 == 49 {
            assert!(server.child.try_wait().unwrap().is_none(), "the server exited at case {case}");
            let a = client.send(hyper::Method::GET, "/api/jobs", Vec::new()).unwrap();
            assert!(a.status.is_success(), "after case {case}: {}", a.status);
        }
    }
    eprintln!("{n} mutated requests: {by_status:?}");
}
