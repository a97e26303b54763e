//! `run --workers N`: a parameter server and N workers on this machine, talking QUIC over loopback
//! (the same code path as a multi-host run), each worker training a contiguous shard of the rows on
//! its own thread and device context.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use distk_net::auth::{SecretEntry, Secrets, random_secret};
use distk_net::client::{ConnectOptions, new_incarnation};
use distk_net::tls::{Identity, Trust};
use distk_onnx::OnnxModel;

use crate::data::DataReader;
use crate::data::dataset::Dataset;
use crate::data::stream::too_large_for_memory;
use crate::distributed::ps::{PsSetup, RunProgress, persistent_identity, run_ps};
use crate::distributed::report::{HistoryOutputs, finish_run};
use crate::distributed::shard::contiguous_shards;
use crate::distributed::worker::{WorkerData, WorkerRun, run_worker};
use crate::job_spec::JobSpec;
use crate::runtime::DeviceChoice;
use crate::training::model_widths;

/// A local distributed run: a parameter server and `workers` workers in this process.
pub struct LocalRun {
    /// The ONNX model.
    pub model: PathBuf,
    /// Training rows.
    pub data: PathBuf,
    /// Validation rows.
    pub validation: Option<PathBuf>,
    /// The job.
    pub spec: JobSpec,
    /// Workers.
    pub workers: u32,
    /// Where the trained model goes.
    pub out: PathBuf,
    /// Where the history goes.
    pub history: Option<PathBuf>,
    /// Where the history goes as CSV.
    pub history_csv: Option<PathBuf>,
    /// Where the per-epoch plot goes.
    pub plot: Option<PathBuf>,
    /// Snapshots of the server.
    pub checkpoint_dir: Option<PathBuf>,
    /// Updates between snapshots.
    pub checkpoint_every: u64,
    /// Write every change of the server ahead to a log in the checkpoint directory.
    pub wal: bool,
    /// Continue from the snapshot.
    pub resume: bool,
    /// An s3:// prefix holding a copy of every snapshot.
    pub snapshot_copy: Option<PathBuf>,
    /// Where the models run.
    pub device: DeviceChoice,
    /// Adapter index.
    pub adapter: Option<usize>,
    /// Set to stop the run (workers commit their partial window and leave).
    pub stop: Arc<AtomicBool>,
    /// Print what happens.
    pub verbose: bool,
    /// Where the server reports progress.
    pub progress: Option<Arc<Mutex<RunProgress>>>,
}

/// Trains `run` to the end: writes the model and history (see [`finish_run`]).
pub fn train_local(args: LocalRun) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let mut spec = args.spec.clone();
    let model = OnnxModel::load(&args.model)?;
    crate::training::model_io::check_fixed_batch(&model, args.spec.batch_size)?;
    let (width, classes) = model_widths(&model)?;
    // Standard steps are fitted once on all the training rows; the workers get them fitted.
    spec.fit_transforms(&args.data)?;
    let cols = spec.data_columns()?;
    // Data larger than --in-memory-max-bytes: every worker streams its own row groups.
    let streamed = too_large_for_memory(&args.data, &cols, width, spec.in_memory_max_bytes)?;
    let (data, rows) = if streamed {
        (None, DataReader::open(&args.data, &cols.features, Some(&cols.label), 1)?.total_rows().unwrap_or(0))
    } else {
        let d = Arc::new(Dataset::load(&args.data, &cols, width, classes)?);
        let rows = d.rows;
        (Some(d), rows)
    };
    let validation = match &args.validation {
        Some(p) => Some(Dataset::load(p, &cols, width, classes)?),
        None => None,
    };
    let shards = contiguous_shards(rows, args.workers as usize, spec.batch_size)?;
    let secret = random_secret()?;
    let secrets = Secrets(vec![SecretEntry { secret: secret.clone(), identity: "local".into() }]);
    let identity = match &args.checkpoint_dir {
        Some(dir) => persistent_identity(dir)?,
        None => Identity::self_signed(&[])?,
    };
    let net = crate::distributed::net_runtime()?;
    let stop = args.stop.clone();
    let kind = spec.trainer.kind;
    let shares = if streamed {
        " (streamed: each worker reads its own row groups)".to_string()
    } else {
        format!(
            " in shards of {}..{}",
            shards.iter().map(|s| s.len()).min().unwrap_or(0),
            shards.iter().map(|s| s.len()).max().unwrap_or(0)
        )
    };
    eprintln!(
        "training with {} workers, trainer {} (window {}), {} rows{shares}",
        args.workers,
        kind.name(),
        spec.trainer.window,
        rows
    );
    let setup = PsSetup {
        listen: ([127, 0, 0, 1], 0).into(),
        identity,
        secrets,
        workers: args.workers,
        spec: spec.clone(),
        model: model.clone(),
        validation: validation.clone(),
        device: args.device,
        adapter: args.adapter,
        checkpoint_dir: args.checkpoint_dir.clone(),
        checkpoint_every: args.checkpoint_every,
        wal: args.wal,
        resume: args.resume,
        snapshot_copy: args.snapshot_copy.clone(),
        join_timeout: Duration::from_secs(120),
        round_timeout: Duration::from_secs(24 * 3600),
        stop: stop.clone(),
        verbose: args.verbose,
        progress: args.progress.clone(),
    };
    let mut threads = Vec::new();
    let handle = net.handle().clone();
    let outcome = run_ps(setup, net.handle(), |started| {
        for (i, range) in shards.iter().enumerate() {
            let incarnation = match new_incarnation() {
                Ok(n) => n,
                Err(e) => {
                    threads.push(Err(anyhow::anyhow!("cannot start worker {i}: {e}")));
                    continue;
                }
            };
            let run = WorkerRun {
                connect: ConnectOptions {
                    addr: started.addr,
                    server_name: "localhost".into(),
                    trust: Trust::Pinned(started.sha256),
                    secret: secret.clone(),
                    worker: i as u32,
                    max_frame: usize::MAX / 2,
                    request_timeout: Duration::from_secs(60),
                    pull_timeout: Duration::from_secs(24 * 3600),
                    incarnation,
                },
                // The join deadline of the server: connection attempts are retried within it.
                reconnect_timeout: Duration::from_secs(120),
                ack_log: None,
                data: match &data {
                    Some(d) => WorkerData::Loaded(d.clone(), range.clone()),
                    None => WorkerData::File(args.data.clone(), Some((i, args.workers as usize))),
                },
                device: args.device,
                adapter: args.adapter,
                stop: stop.clone(),
                verbose: false,
                // A resumed run's workers go on from the epochs the server recorded as theirs.
                start_epoch: started.epochs_done.get(i).map_or(0, |&e| e as usize),
            };
            let handle = handle.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || run_worker(run, &handle))
                    .map_err(|e| anyhow::anyhow!("cannot start worker {i}: {e}")),
            );
        }
    });
    // Workers end with the server; report their own errors (a diverging loss, a device failure).
    let mut errors = Vec::new();
    for (i, t) in threads.into_iter().enumerate() {
        match t {
            Ok(t) => match t.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => errors.push(format!("worker {i}: {e:#}")),
                Err(_) => errors.push(format!("worker {i} panicked")),
            },
            Err(e) => errors.push(e.to_string()),
        }
    }
    for e in &errors {
        eprintln!("{e}");
    }
    let outputs =
        HistoryOutputs { json: args.history.as_deref(), csv: args.history_csv.as_deref(), plot: args.plot.as_deref() };
    let result = outcome
        .and_then(|outcome| finish_run(&outcome, &spec, &model, &args.out, outputs, validation.as_ref(), args.device));
    // A run that ends without a model because its workers failed says why they did.
    match result {
        Err(e) if !errors.is_empty() && e.downcast_ref::<crate::distributed::PartialRun>().is_none() => {
            bail!("{} ({e:#})", errors.join("; "))
        }
        r => r,
    }
}
