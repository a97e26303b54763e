//! The parameter server of a run: serves the centre over QUIC, follows the workers (joined, lost,
//! done), snapshots the centre and its clocks every `checkpoint_every` updates, evaluates the centre
//! on validation rows whenever every worker finished another epoch, and ends when every worker is
//! done or lost.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use distk_net::auth::Secrets;
use distk_net::averaging::RoundBarrier;
use distk_net::endpoint::server_endpoint;
use distk_net::host::{Event, Host, HostConfig, PsState, serve};
use distk_net::membership::{Membership, Presence};
use distk_net::server::{ServerCore, Snapshot};
use distk_net::tls::{Identity, hex};
use distk_onnx::OnnxModel;
use serde::{Deserialize, Serialize};

use crate::data::atomic::write_atomically;
use crate::data::dataset::Dataset;
use crate::distributed::job::{self, JobSpec};
use crate::distributed::worker::WorkerHistory;
use crate::runtime::{DeviceChoice, Runtime};
use crate::trainers::TrainerKind;
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
    /// Where snapshots go.
    pub checkpoint_dir: Option<PathBuf>,
    /// Updates between snapshots.
    pub checkpoint_every: u64,
    /// Continue from the snapshot in `checkpoint_dir`.
    pub resume: bool,
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
}

#[derive(Serialize, Deserialize)]
struct SnapshotMeta {
    trainer: String,
    param_len: usize,
    clock: u64,
    round: u64,
    workers: Vec<(u32, u64, Option<u64>)>,
    done: Vec<(u32, String)>,
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

fn write_snapshot(dir: &Path, host: &Host, trainer: TrainerKind) -> Result<()> {
    let (snap, round, done): (Snapshot, u64, Vec<(u32, String)>) = {
        let st = host.lock();
        let done = st
            .members
            .members()
            .iter()
            .filter(|(_, m)| m.presence == Presence::Done)
            .map(|(&id, m)| (id, m.identity.clone()))
            .collect();
        (st.core.snapshot(), st.barrier.as_ref().map_or(0, |b| b.round()), done)
    };
    let bytes: Vec<u8> = snap.centre.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_atomically(&dir.join("centre.f32"), |f| Ok(std::io::Write::write_all(f, &bytes)?))?;
    let meta = SnapshotMeta {
        trainer: trainer.name().into(),
        param_len: snap.centre.len(),
        clock: snap.clock,
        round,
        workers: snap.workers,
        done,
    };
    write_atomically(&dir.join("ps.json"), |f| Ok(serde_json::to_writer_pretty(f, &meta)?))
}

/// A snapshot read back: the core's state, the averaging round, and the workers already done.
type Restored = (Snapshot, u64, Vec<(u32, String)>);

fn read_snapshot(dir: &Path, trainer: TrainerKind, len: usize) -> Result<Restored> {
    let meta_path = dir.join("ps.json");
    let meta: SnapshotMeta = serde_json::from_slice(
        &std::fs::read(&meta_path)
            .with_context(|| format!("no snapshot to resume: cannot read {}", meta_path.display()))?,
    )
    .with_context(|| format!("{} does not parse", meta_path.display()))?;
    if meta.trainer != trainer.name() || meta.param_len != len {
        bail!(
            "the snapshot in {} is of trainer {} with {} parameters; this run is {} with {len}",
            dir.display(),
            meta.trainer,
            meta.param_len,
            trainer.name()
        );
    }
    let bytes = std::fs::read(dir.join("centre.f32")).context("cannot read the snapshot's centre.f32")?;
    if bytes.len() != len * 4 {
        bail!("centre.f32 in {} holds {} bytes, expected {}", dir.display(), bytes.len(), len * 4);
    }
    let centre = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok((Snapshot { centre, clock: meta.clock, workers: meta.workers }, meta.round, meta.done))
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
    let mut s = TrainSession::with_config(model, &mut cpu, 1, &config)?;
    Ok((s.layout().clone(), s.params()?))
}

/// Runs the parameter server until every worker is done or lost; `on_start` hears where it listens.
pub fn run_ps(setup: PsSetup, net: &tokio::runtime::Handle, on_start: impl FnOnce(&PsStarted)) -> Result<PsOutcome> {
    let (_, classes) = crate::commands::evaluate::model_widths(&setup.model)?;
    let (layout, init) = initial_centre(&setup.model, &setup.spec, classes)?;
    let kind = setup.spec.trainer.kind;
    let mut core = ServerCore::new(init.clone(), setup.spec.trainer.server_rule());
    let mut members = Membership::new(setup.workers);
    let mut barrier = (kind == TrainerKind::Averaging).then(|| RoundBarrier::new(init.len()));
    if setup.resume {
        let dir = setup.checkpoint_dir.as_ref().context("--resume needs --checkpoint-dir")?;
        let (snap, round, done) = read_snapshot(dir, kind, init.len())?;
        core.restore(&snap)?;
        if let Some(b) = barrier.as_mut() {
            b.set_round(round);
        }
        for (id, identity) in done {
            members.restore_done(id, &identity);
        }
        if setup.verbose {
            eprintln!("resumed from {} at clock {}", dir.display(), snap.clock);
        }
    }
    let job = job::encode(&setup.spec, &setup.model)?;
    let max_frame = job.len().max(init.len() * 4) + (1 << 20);
    let config = HostConfig {
        max_frame,
        job: Arc::new(job),
        round_timeout: setup.round_timeout,
        hello_timeout: Duration::from_secs(10),
    };
    let (host, mut events) = Host::new(PsState { core, members, barrier }, config);
    let endpoint = {
        let _guard = net.enter();
        server_endpoint(setup.listen, &setup.identity)?
    };
    let addr = endpoint.local_addr().context("the server endpoint has no address")?;
    net.spawn(serve(endpoint.clone(), host.clone(), Arc::new(setup.secrets)));
    on_start(&PsStarted { addr, sha256: setup.identity.sha256 });
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
            Some(Evaluator::with_import(&setup.model, &mut rt, 256.min(v.rows), &loss, v.sparse(), &config.import)?)
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
    let mut epochs = Vec::new();
    let mut last_snapshot = 0u64;
    let mut stopped = "completed".to_string();
    let mut stop_seen: Option<Instant> = None;
    let mut handle_event = |ev: Event, epochs: &mut Vec<CentreEpoch>, last_snapshot: &mut u64| -> Result<()> {
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
            Event::Done { worker } => {
                if setup.verbose {
                    eprintln!("worker {worker} done");
                }
            }
            Event::Epoch { .. } => {}
            Event::EpochCentre { epoch, clock, centre } => {
                if let Some(p) = &setup.progress {
                    let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
                    p.epochs_done = epoch + 1;
                    p.clock = p.clock.max(clock);
                }
                if let Some(eval) = evaluate(&centre)? {
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
                }
            }
            Event::Updated { clock } => {
                if let Some(p) = &setup.progress {
                    let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
                    p.clock = p.clock.max(clock);
                }
                if let Some(dir) = &setup.checkpoint_dir
                    && clock >= *last_snapshot + setup.checkpoint_every.max(1)
                {
                    write_snapshot(dir, &host, kind)?;
                    *last_snapshot = clock;
                }
            }
        }
        Ok(())
    };
    loop {
        match net.block_on(async { tokio::time::timeout(Duration::from_millis(200), events.recv()).await }) {
            Ok(Some(ev)) => handle_event(ev, &mut epochs, &mut last_snapshot)?,
            Ok(None) => break,
            Err(_) => {}
        }
        let (finished, never) = {
            let st = host.lock();
            let never = st.members.never_joined();
            // Past the join deadline, workers that never came are given up: the run ends when
            // nobody is connected any more.
            let finished = if never.is_empty() || Instant::now() < join_deadline {
                st.members.all_finished()
            } else {
                st.members.live().is_empty()
            };
            (finished, never)
        };
        if finished {
            // What the last workers said before they left.
            while let Ok(ev) = events.try_recv() {
                handle_event(ev, &mut epochs, &mut last_snapshot)?;
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
    if let Some(dir) = &setup.checkpoint_dir {
        write_snapshot(dir, &host, kind)?;
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
                history: None,
            });
            continue;
        };
        let history = m.report.as_ref().and_then(|r| serde_json::from_slice::<WorkerHistory>(r).ok());
        let (status, reason) = match &m.presence {
            Presence::Done => ("done", None),
            Presence::Lost(r) => ("lost", Some(r.clone())),
            Presence::Connected => ("still connected", None),
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
            history,
        });
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
    })
}
