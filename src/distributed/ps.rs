//! The parameter server of a run: serves the centre over QUIC, follows the workers (joined, lost,
//! done), keeps its state durable in the checkpoint directory (a write-ahead log of every change,
//! group-committed before the acknowledgements it covers, and snapshots that cut the log: see
//! `distk_net::durable`), recovers from it with `--resume` (snapshot + replay, recorded in the
//! history), evaluates the centre on validation rows whenever every worker finished another epoch,
//! and ends when every worker is done or lost.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use distk_net::auth::Secrets;
use distk_net::averaging::RoundBarrier;
use distk_net::durable::{self, CheckpointPolicy, Recovery};
use distk_net::endpoint::server_endpoint;
use distk_net::host::{Event, Host, HostConfig, serve};
use distk_net::membership::{Membership, Presence};
use distk_net::rules::{Add, UpdateRule};
use distk_net::server::ServerCore;
use distk_net::snapshot::StateSnapshot;
use distk_net::state::PsState;
use distk_net::tls::{Identity, hex};
use distk_net::wal::WalOptions;
use distk_onnx::OnnxModel;
use serde::{Deserialize, Serialize};

use crate::data::atomic::write_atomically;
use crate::data::dataset::Dataset;
use crate::distributed::job;
use crate::distributed::snapshot_mirror::{SnapshotMirror, restore_if_missing};
use crate::distributed::worker::WorkerHistory;
use crate::job_spec::JobSpec;
use crate::runtime::{DeviceChoice, Runtime};
use crate::trainers::ServerSide;
use crate::training::TrainSession;
use crate::training::evaluate::{Evaluation, Evaluator};

/// Everything the parameter server of a run needs.
pub struct PsSetup {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The TLS identity (self-signed or given).
    pub identity: Identity,
    /// Who may connect.
    pub secrets: Secrets,
    /// Workers of the run.
    pub workers: u32,
    /// The job.
    pub spec: JobSpec,
    /// The model.
    pub model: OnnxModel,
    /// Rows to evaluate the centre on after every epoch.
    pub validation: Option<Dataset>,
    /// Where the evaluation runs.
    pub device: DeviceChoice,
    /// Adapter index.
    pub adapter: Option<usize>,
    /// Where the snapshots and the write-ahead log go.
    pub checkpoint_dir: Option<PathBuf>,
    /// Updates between snapshots.
    pub checkpoint_every: u64,
    /// Write every change ahead to a log in `checkpoint_dir` (false: snapshots only, so a crash
    /// loses what was acknowledged since the last one).
    pub wal: bool,
    /// Continue from the snapshot in `checkpoint_dir`.
    pub resume: bool,
    /// An `s3://` prefix that holds a copy of every snapshot (and, on `resume`, fills an empty
    /// `checkpoint_dir`).
    pub snapshot_copy: Option<PathBuf>,
    /// How long to wait for every worker to join.
    pub join_timeout: Duration,
    /// How long an averaging round may wait for its slowest worker.
    pub round_timeout: Duration,
    /// Set to end the run early (Ctrl-C, a cancelled job).
    pub stop: Arc<AtomicBool>,
    /// Print what happens.
    pub verbose: bool,
    /// Where progress is reported (job servers).
    pub progress: Option<Arc<std::sync::Mutex<RunProgress>>>,
}

/// How far a run is.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunProgress {
    /// Epochs every worker finished.
    pub epochs_done: u64,
    /// Updates of the centre.
    pub clock: u64,
    /// Workers that joined.
    pub workers_joined: u32,
    /// The centre's validation accuracy after the last epoch, when validated.
    pub val_accuracy: Option<f64>,
}

/// What became of one worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerOutcome {
    /// Its id.
    pub worker: u32,
    /// Who holds its secret.
    pub identity: String,
    /// `done`, `lost` or `never joined`.
    pub status: String,
    /// Why it was lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Commits the server applied from it.
    pub commits_applied: u64,
    /// The sequence number of its last applied commit (asynchronous trainers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// Its own history, when it reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<WorkerHistory>,
}

/// The centre's validation after an epoch of every worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CentreEpoch {
    /// Epoch, from 0.
    pub epoch: u64,
    /// The server clock when it was evaluated.
    pub clock: u64,
    /// Seconds since the server started.
    pub time: f64,
    /// Loss and accuracy of the centre.
    #[serde(flatten)]
    pub eval: Evaluation,
}

/// A recovery of the parameter server from its checkpoint directory (`--resume`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecoveryRecord {
    /// When it happened (seconds since the Unix epoch).
    pub at_unix: f64,
    /// The clock of the snapshot it started from.
    pub snapshot_clock: u64,
    /// Log records replayed after the snapshot.
    pub replayed_records: u64,
    /// Of which commits.
    pub replayed_commits: u64,
    /// Bytes of log replayed.
    pub replayed_bytes: u64,
    /// The clock after the replay.
    pub clock: u64,
    /// Seconds the recovery took (snapshot read and replay).
    pub seconds: f64,
    /// A torn or corrupt tail of the log that was cut off (a crash in the middle of a write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torn_tail: Option<String>,
}

impl RecoveryRecord {
    fn new(r: &Recovery) -> Self {
        RecoveryRecord {
            at_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            snapshot_clock: r.snapshot_clock,
            replayed_records: r.replayed_records,
            replayed_commits: r.replayed_commits,
            replayed_bytes: r.replayed_bytes,
            clock: r.clock,
            seconds: r.seconds,
            torn_tail: r
                .torn
                .as_ref()
                .map(|t| format!("{} bytes at {} of {}: {}", t.dropped_bytes, t.offset, t.segment.display(), t.reason)),
        }
    }
}

/// The end of a run as the server saw it.
pub struct PsOutcome {
    /// The final centre.
    pub centre: Vec<f32>,
    /// Its layout.
    pub layout: distk_engine::ParamLayout,
    /// Updates applied.
    pub clock: u64,
    /// Every worker.
    pub workers: Vec<WorkerOutcome>,
    /// The centre per epoch.
    pub epochs: Vec<CentreEpoch>,
    /// The final centre on the validation rows.
    pub final_validation: Option<Evaluation>,
    /// Final weights per worker (ensembles).
    pub finals: Vec<(u32, Vec<f32>)>,
    /// `completed`, `interrupted`.
    pub stopped: String,
    /// Seconds from start to end.
    pub seconds: f64,
    /// Every recovery of the server from its checkpoint directory during the run.
    pub recoveries: Vec<RecoveryRecord>,
}

impl PsOutcome {
    /// Workers that did not finish (lost or never joined), named.
    pub fn failures(&self) -> Vec<String> {
        self.workers
            .iter()
            .filter(|w| w.status != "done")
            .map(|w| {
                format!(
                    "worker {} {}{}",
                    w.worker,
                    w.status,
                    w.reason.as_ref().map_or(String::new(), |r| format!(" ({r})"))
                )
            })
            .collect()
    }
}

/// Where the server is, once it listens.
#[derive(Clone, Debug)]
pub struct PsStarted {
    /// The bound address.
    pub addr: SocketAddr,
    /// The certificate's SHA-256 (what workers pin).
    pub sha256: [u8; 32],
    /// Epochs each worker id had finished in the state the server started from (all 0 unless it
    /// resumed), so that workers restarted with it do not train them again.
    pub epochs_done: Vec<u64>,
}

/// A readable summary of the last snapshot (`ps.json`; the state itself is in `state.bin`).
#[derive(Serialize, Deserialize)]
struct SnapshotSummary {
    trainer: String,
    param_len: usize,
    clock: u64,
    lsn: u64,
    round: Option<u64>,
    workers_done: Vec<u32>,
}

/// The identity of a server that keeps its self-signed certificate in `dir` (made on first use),
/// so workers that pinned it can reconnect after `ps --resume`.
pub fn persistent_identity(dir: &Path) -> Result<Identity> {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    if cert.exists() && key.exists() {
        return Ok(Identity::from_pem_files(&cert, &key)?);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let id = Identity::self_signed(&[])?;
    let (c, k) = id.to_pem();
    write_atomically(&cert, |f| Ok(std::io::Write::write_all(f, c.as_bytes())?))?;
    crate::data::atomic::write_private(&key, |f| Ok(std::io::Write::write_all(f, k.as_bytes())?))?;
    Ok(id)
}

/// Writes `snap` as the checkpoint of `dir` (snapshot, log cut, summary).
fn write_checkpoint(dir: &Path, host: &Host, snap: &StateSnapshot) -> Result<()> {
    durable::write_checkpoint(dir, host.wal(), snap)?;
    write_summary(dir, snap)
}

/// Writes the readable summary of `snap` (`ps.json`).
fn write_summary(dir: &Path, snap: &StateSnapshot) -> Result<()> {
    let summary = SnapshotSummary {
        trainer: snap.label.clone(),
        param_len: snap.centre.len(),
        clock: snap.clock,
        lsn: snap.lsn,
        round: snap.barrier.as_ref().map(|b| b.round),
        workers_done: snap.members.iter().filter(|m| m.done).map(|m| m.id).collect(),
    };
    write_atomically(&dir.join("ps.json"), |f| Ok(serde_json::to_writer_pretty(f, &summary)?))
}

const RECOVERIES: &str = "recoveries.json";
const EPOCHS: &str = "epochs.json";

/// A JSON list kept in the checkpoint directory (empty when the file is missing).
fn read_list<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<Vec<T>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{} does not parse", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_list<T: Serialize>(dir: &Path, name: &str, items: &[T]) -> Result<()> {
    write_atomically(&dir.join(name), |f| Ok(serde_json::to_writer_pretty(f, items)?))
}

/// The flat layout and initial parameters of `model` as the workers will train it.
pub fn initial_centre(
    model: &OnnxModel,
    spec: &JobSpec,
    classes: usize,
) -> Result<(distk_engine::ParamLayout, Vec<f32>)> {
    let loss = spec.loss.clone().unwrap_or_else(|| {
        if classes == 1 { "binary_crossentropy" } else { "sparse_categorical_crossentropy" }.to_string()
    });
    let sparse = !matches!(loss.as_str(), "categorical_crossentropy" | "mean_squared_error" | "mean_absolute_error");
    let config = spec.session_config(&loss, sparse)?;
    let mut cpu = Runtime::open(DeviceChoice::Cpu, None)?;
    let batch = crate::training::model_io::fixed_batch(model)?.unwrap_or(1);
    let mut s = TrainSession::with_config(model, &mut cpu, batch, &config)?;
    Ok((s.layout().clone(), s.params()?))
}

/// Runs the parameter server until every worker is done or lost; `on_start` hears where it listens.
pub fn run_ps(setup: PsSetup, net: &tokio::runtime::Handle, on_start: impl FnOnce(&PsStarted)) -> Result<PsOutcome> {
    let (_, classes) = crate::training::model_widths(&setup.model)?;
    let (layout, init) = initial_centre(&setup.model, &setup.spec, classes)?;
    let kind = setup.spec.trainer.kind;
    let label = kind.name();
    // The trainer's server side: a rule folds commits; averaging closes rounds (the plain sum is the
    // rule then, and for an ensemble, which commits nothing).
    let (rule, rounds) = match setup.spec.trainer.server_side() {
        ServerSide::Rule(rule) => (rule, false),
        ServerSide::Rounds => (Box::new(Add) as Box<dyn UpdateRule>, true),
        ServerSide::Collect | ServerSide::None => (Box::new(Add) as Box<dyn UpdateRule>, false),
    };
    // A rule that keeps each worker's pulled centre keeps a centre-sized copy per worker.
    let pulled_copies = if rule.needs_pulled_centre() { setup.workers as usize } else { 0 };
    let mut state = PsState::new(
        ServerCore::new(init.clone(), rule),
        Membership::new(setup.workers),
        rounds.then(|| RoundBarrier::new(init.len())),
    );
    let policy = CheckpointPolicy::new(setup.checkpoint_every, init.len() * (1 + pulled_copies));
    let log = setup.wal.then(|| WalOptions::for_records(init.len() as u64 * 4 + 64, policy.log_bytes));
    let mut recoveries: Vec<RecoveryRecord> = Vec::new();
    let mut epochs: Vec<CentreEpoch> = Vec::new();
    let mut replayed_epochs = Vec::new();
    let mut mirror = match (&setup.snapshot_copy, &setup.checkpoint_dir) {
        (Some(_), None) => bail!("--snapshot-copy copies the snapshots of --checkpoint-dir: give both"),
        (Some(url), Some(dir)) => {
            if setup.resume && restore_if_missing(dir, url)? {
                eprintln!("restored the snapshot of {} from {}", dir.display(), url.display());
            }
            Some(SnapshotMirror::new(url, dir)?)
        }
        _ => None,
    };
    let wal = match (&setup.checkpoint_dir, setup.resume) {
        (None, true) => bail!("--resume needs --checkpoint-dir"),
        (None, false) => None,
        (Some(dir), false) => {
            let w = durable::start(dir, &state, label, log)
                .with_context(|| format!("cannot start the checkpoint directory {}", dir.display()))?;
            for name in [RECOVERIES, EPOCHS] {
                let _ = std::fs::remove_file(dir.join(name));
            }
            write_summary(dir, &state.snapshot(label, 0))?;
            // An older run's copy under the same prefix is replaced before this run goes on.
            if let Some(m) = mirror.as_mut() {
                m.sync(dir)?;
            }
            w
        }
        (Some(dir), true) => {
            if !durable::snapshot_path(dir).exists() {
                bail!(
                    "no snapshot to resume in {}: {} is missing (was the run started with this --checkpoint-dir?)",
                    dir.display(),
                    durable::snapshot_path(dir).display()
                );
            }
            let (w, r) = durable::recover(dir, &mut state, label, log)
                .with_context(|| format!("cannot recover the parameter server from {}", dir.display()))?;
            eprintln!(
                "resumed from {} at clock {} (snapshot) + {} log records ({} commits, {:.1} MB) replayed: clock {} in {:.3} s{}",
                dir.display(),
                r.snapshot_clock,
                r.replayed_records,
                r.replayed_commits,
                r.replayed_bytes as f64 / 1e6,
                r.clock,
                r.seconds,
                r.torn.as_ref().map_or(String::new(), |t| format!(
                    "; cut a torn tail of {} bytes ({})",
                    t.dropped_bytes, t.reason
                ))
            );
            recoveries = read_list(dir, RECOVERIES)?;
            recoveries.push(RecoveryRecord::new(&r));
            write_list(dir, RECOVERIES, &recoveries)?;
            epochs = read_list(dir, EPOCHS)?;
            replayed_epochs = r.epoch_centres;
            w
        }
    };
    let job = job::encode(&setup.spec, &setup.model)?;
    let max_frame = job.len().max(init.len() * 4) + (1 << 20);
    let config = HostConfig {
        max_frame,
        job: Arc::new(job),
        round_timeout: setup.round_timeout,
        hello_timeout: Duration::from_secs(10),
    };
    let (host, mut events) = Host::new(state, config, wal);
    let endpoint = {
        let _guard = net.enter();
        server_endpoint(setup.listen, &setup.identity)?
    };
    let addr = endpoint.local_addr().context("the server endpoint has no address")?;
    net.spawn(serve(endpoint.clone(), host.clone(), Arc::new(setup.secrets)));
    let epochs_done = {
        let st = host.lock();
        (0..setup.workers).map(|i| st.members.members().get(&i).map_or(0, |m| m.epochs_done)).collect()
    };
    on_start(&PsStarted { addr, sha256: setup.identity.sha256, epochs_done });
    if setup.verbose {
        eprintln!(
            "parameter server on {addr} ({} trainer, {} workers); certificate SHA-256 {}",
            kind.name(),
            setup.workers,
            hex(&setup.identity.sha256)
        );
    }

    let mut evaluator = match &setup.validation {
        Some(v) => {
            let loss = setup.spec.loss.clone().unwrap_or_else(|| v.default_loss(classes).to_string());
            let config = setup.spec.session_config(&loss, v.sparse())?;
            let mut rt = Runtime::open(setup.device, setup.adapter)?;
            let batch = crate::training::model_io::fixed_batch(&setup.model)?.unwrap_or(256.min(v.rows));
            Some(Evaluator::with_import(
                &setup.model,
                &mut rt,
                batch,
                &loss,
                v.sparse(),
                &config.import,
                config.from_logits,
            )?)
        }
        None => None,
    };
    let mut evaluate = |centre: &[f32]| -> Result<Option<Evaluation>> {
        match (evaluator.as_mut(), setup.validation.as_ref()) {
            (Some(e), Some(v)) => {
                e.set_params(centre)?;
                Ok(Some(e.evaluate(v)?))
            }
            _ => Ok(None),
        }
    };

    let started = Instant::now();
    let join_deadline = started + setup.join_timeout;
    let mut stopped = "completed".to_string();
    let mut stop_seen: Option<Instant> = None;
    let mut given_up = false;
    let mut last_snapshot_clock = host.lock().core.clock();
    // Validates the centre of `epoch` (unless a run before a restart did) and keeps the result in
    // the checkpoint directory, so it survives a crash.
    let mut validate = |epoch: u64, clock: u64, centre: &[f32], epochs: &mut Vec<CentreEpoch>| -> Result<()> {
        if let Some(p) = &setup.progress {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            p.epochs_done = p.epochs_done.max(epoch + 1);
            p.clock = p.clock.max(clock);
        }
        if epochs.iter().any(|e| e.epoch == epoch) {
            return Ok(());
        }
        if let Some(eval) = evaluate(centre)? {
            if setup.verbose {
                eprintln!(
                    "epoch {}: centre val_loss {:.4} val_accuracy {:.4} (clock {clock})",
                    epoch + 1,
                    eval.loss,
                    eval.accuracy
                );
            }
            if let Some(p) = &setup.progress {
                p.lock().unwrap_or_else(|e| e.into_inner()).val_accuracy = Some(eval.accuracy);
            }
            epochs.push(CentreEpoch { epoch, clock, time: started.elapsed().as_secs_f64(), eval });
            epochs.sort_by_key(|e| e.epoch);
            if let Some(dir) = &setup.checkpoint_dir {
                write_list(dir, EPOCHS, epochs)?;
            }
        }
        Ok(())
    };
    // Epochs the replay found complete, whose validation a crash may have cut short.
    for (epoch, clock, centre) in std::mem::take(&mut replayed_epochs) {
        validate(epoch, clock, &centre, &mut epochs)?;
    }
    let mut handle_event = |ev: Event, epochs: &mut Vec<CentreEpoch>| -> Result<()> {
        match ev {
            Event::Joined { worker, identity } => {
                if let Some(p) = &setup.progress {
                    p.lock().unwrap_or_else(|e| e.into_inner()).workers_joined += 1;
                }
                if setup.verbose {
                    eprintln!("worker {worker} joined ({identity})");
                }
            }
            Event::Lost { worker, reason } => eprintln!("worker {worker} lost: {reason}"),
            Event::Refused { reason } => eprintln!("refused a connection: {reason}"),
            Event::LogFailed { reason } => eprintln!("the write-ahead log failed: {reason}"),
            Event::Done { worker } => {
                if setup.verbose {
                    eprintln!("worker {worker} done");
                }
            }
            Event::Epoch { .. } => {}
            Event::EpochCentre { epoch, clock, centre } => validate(epoch, clock, &centre, epochs)?,
            Event::Updated { clock } => {
                if let Some(p) = &setup.progress {
                    let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
                    p.clock = p.clock.max(clock);
                }
            }
        }
        Ok(())
    };
    // A checkpoint: the state captured under the lock together with the events emitted before it,
    // which are handled (epochs validated and kept) before the snapshot that holds them is written.
    let mut checkpoint = |events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
                          epochs: &mut Vec<CentreEpoch>,
                          handle: &mut dyn FnMut(Event, &mut Vec<CentreEpoch>) -> Result<()>|
     -> Result<u64> {
        let Some(dir) = &setup.checkpoint_dir else { return Ok(0) };
        let mut pending = Vec::new();
        let snap = host.capture(label, || {
            while let Ok(ev) = events.try_recv() {
                pending.push(ev);
            }
        })?;
        for ev in pending {
            handle(ev, epochs)?;
        }
        write_checkpoint(dir, &host, &snap)?;
        if let Some(m) = mirror.as_mut() {
            m.offer(dir);
        }
        Ok(snap.clock)
    };
    loop {
        match net.block_on(async { tokio::time::timeout(Duration::from_millis(200), events.recv()).await }) {
            Ok(Some(ev)) => handle_event(ev, &mut epochs)?,
            Ok(None) => break,
            Err(_) => {}
        }
        if setup.checkpoint_dir.is_some() {
            let clock = host.lock().core.clock();
            let log_bytes = host.wal().map_or(0, |w| w.bytes_since_rotation());
            if policy.due(clock.saturating_sub(last_snapshot_clock), log_bytes) {
                match checkpoint(&mut events, &mut epochs, &mut handle_event) {
                    Ok(c) => last_snapshot_clock = c,
                    // The log still holds everything: the run goes on and tries again later.
                    Err(e) => {
                        eprintln!("cannot write a snapshot: {e:#}");
                        last_snapshot_clock = clock;
                    }
                }
            }
        }
        let past_deadline = Instant::now() >= join_deadline;
        // Workers known from before a restart (or whose join the log could not take) that are
        // not back by the deadline are lost, so nothing waits for them any longer.
        if past_deadline && !given_up {
            given_up = true;
            let gone = host.give_up_away("did not reconnect after the parameter server restarted");
            // Ids nobody joined under no longer hold the epochs of the others back.
            host.give_up_missing();
            if !gone.is_empty() {
                eprintln!("workers {gone:?} did not reconnect within {:?} of the restart", setup.join_timeout);
            }
        }
        // An epoch completed or a round closed by a loss while the disk was full is logged now.
        host.catch_up();
        let (finished, never) = {
            let st = host.lock();
            let never = st.members.never_joined();
            // Past the join deadline, workers that never came are given up: the run ends when
            // nobody is connected any more.
            let finished = if never.is_empty() || !past_deadline {
                st.members.all_finished()
            } else {
                st.members.live().is_empty()
            };
            (finished, never)
        };
        if finished {
            // What the last workers said before they left.
            while let Ok(ev) = events.try_recv() {
                handle_event(ev, &mut epochs)?;
            }
            if !never.is_empty() {
                eprintln!("workers {never:?} never joined within {:?}", setup.join_timeout);
            }
            break;
        }
        if setup.stop.load(Ordering::SeqCst) {
            // Local workers stop too: give them a moment to commit their partial window and say
            // done, so nothing they trained is lost and none waits on a server that left.
            stopped = "interrupted".into();
            let since = *stop_seen.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
    }
    // The last acknowledgements may still be on their way: let the workers close their connections
    // (they do after `Done`) before the endpoint goes, for at most 3 s.
    net.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    });
    endpoint.close(distk_net::close::SHUTDOWN.into(), b"the run is over");
    while let Ok(ev) = events.try_recv() {
        handle_event(ev, &mut epochs)?;
    }
    if setup.checkpoint_dir.is_some() {
        checkpoint(&mut events, &mut epochs, &mut handle_event)?;
    }
    if let (Some(m), Some(dir)) = (mirror, &setup.checkpoint_dir) {
        // The trained model is still written; the local checkpoint is whole.
        let mut m = m;
        if let Err(e) = m.sync(dir) {
            eprintln!("cannot copy the last snapshot: {e:#}");
        }
    }
    let st = host.lock();
    let centre = st.core.centre().to_vec();
    let final_validation = evaluate(&centre)?;
    let mut workers = Vec::new();
    let mut finals = Vec::new();
    for id in 0..setup.workers {
        let commits_applied = st.barrier.as_ref().map_or(st.core.commits_of(id), |b| b.commits_of(id));
        let Some(m) = st.members.members().get(&id) else {
            workers.push(WorkerOutcome {
                worker: id,
                identity: String::new(),
                status: "never joined".into(),
                reason: None,
                commits_applied,
                last_seq: None,
                history: None,
            });
            continue;
        };
        let history = m.report.as_ref().and_then(|r| serde_json::from_slice::<WorkerHistory>(r).ok());
        let (status, reason) = match &m.presence {
            Presence::Done => ("done", None),
            Presence::Lost(r) => ("lost", Some(r.clone())),
            Presence::Connected => ("still connected", None),
            Presence::Away => ("lost", Some("did not reconnect after the parameter server restarted".to_string())),
        };
        if let Some(f) = &m.final_weights {
            finals.push((id, f.clone()));
        }
        workers.push(WorkerOutcome {
            worker: id,
            identity: m.identity.clone(),
            status: status.into(),
            reason,
            commits_applied,
            last_seq: st.core.last_seq(id),
            history,
        });
    }
    if setup.verbose {
        for w in &workers {
            eprintln!(
                "worker {} {}: {} commits applied, last sequence number {}",
                w.worker,
                w.status,
                w.commits_applied,
                w.last_seq.unwrap_or(0)
            );
        }
        eprintln!("parameter server: clock {} after {} recoveries", st.core.clock(), recoveries.len());
    }
    Ok(PsOutcome {
        centre,
        layout,
        clock: st.core.clock(),
        workers,
        epochs,
        final_validation,
        finals,
        stopped,
        seconds: started.elapsed().as_secs_f64(),
        recoveries,
    })
}
