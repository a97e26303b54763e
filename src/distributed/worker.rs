//! A worker: connects to the parameter server, receives the job (model and hyper-parameters), trains
//! its rows with the trainer's policy (the engine on this thread, the network on a tokio runtime
//! beside it), and reports its history. The same code runs in `distk-gpu worker` and in the local
//! workers of `run --workers`.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use distk_net::client::{ConnectOptions, join};
use serde::{Deserialize, Serialize};

use crate::data::dataset::Dataset;
use crate::data::dataset::default_loss;
use crate::data::stream::{StreamOptions, StreamedRows, too_large_for_memory};
use crate::distributed::job;
use crate::distributed::shard::contiguous_shards;
use crate::runtime::{DeviceChoice, Runtime};
use crate::trainers::WorkerSide;
use crate::trainers::link::{Link, QuicLink, Reconnecting};
use crate::trainers::policy::WorkerPolicy;
use crate::trainers::replica::{Replica, SessionReplica};
use crate::training::epochs::{
    Ended, EpochHooks, EpochSummary, MemoryRows, NonFiniteLoss, RowSource, Schedule, StepAt, train_epochs,
};
use crate::training::{StepStats, TrainSession, model_widths};

/// One local step of a worker.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WorkerStep {
    /// Step of this worker, from 0.
    pub step: u64,
    /// Epoch, from 0.
    pub epoch: usize,
    /// Batch loss before the update (of the local model).
    pub loss: f32,
    /// Batch accuracy before the update.
    pub accuracy: f32,
    /// The server clock the worker last heard.
    pub clock: u64,
    /// The staleness of its last acknowledged commit.
    pub staleness: u64,
    /// Seconds blocked on the network during this step.
    pub net_wait_s: f64,
    /// Seconds since the worker started training.
    pub time: f64,
}

/// What a worker reports at the end.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerHistory {
    /// The worker id.
    pub worker: u32,
    /// Rows it trained on per epoch.
    pub rows: usize,
    /// Its steps.
    pub steps: Vec<WorkerStep>,
    /// Commits the server acknowledged.
    pub commits_acknowledged: u64,
    /// Times it reconnected after a lost connection.
    pub reconnects: u64,
    /// Fraction of its training time spent blocked on the network.
    pub net_wait_fraction: f64,
    /// Seconds of training.
    pub seconds: f64,
    /// `completed` or `stopped`.
    pub stopped: String,
}

/// Where a worker's rows come from.
pub enum WorkerData {
    /// Rows already in memory (local workers share one copy).
    Loaded(Arc<Dataset>, Range<usize>),
    /// A file the worker reads itself, all of it or contiguous shard `(i, n)`.
    File(PathBuf, Option<(usize, usize)>),
}

/// How to run one worker.
pub struct WorkerRun {
    /// Where the server is and how to trust it.
    pub connect: ConnectOptions,
    /// How long to keep trying to reach the server: the first connection (retried with backoff)
    /// and reconnections to a server that went away.
    pub reconnect_timeout: Duration,
    /// Where to append a line per acknowledged commit.
    pub ack_log: Option<PathBuf>,
    /// The rows.
    pub data: WorkerData,
    /// Where the model runs.
    pub device: DeviceChoice,
    /// Adapter index.
    pub adapter: Option<usize>,
    /// Set to stop early (the partial window is still committed).
    pub stop: Arc<AtomicBool>,
    /// Print a line per epoch.
    pub verbose: bool,
    /// The first epoch to train: the epochs a resumed server says this worker finished are not
    /// trained again.
    pub start_epoch: usize,
}

/// Runs a worker to the end of its data on this thread, with the network on `net`.
pub fn run_worker(run: WorkerRun, net: &tokio::runtime::Handle) -> Result<WorkerHistory> {
    let opts = run.connect.clone();
    let client = net
        .block_on(join(opts.clone(), run.reconnect_timeout))
        .with_context(|| format!("cannot join the parameter server at {}", opts.addr))?;
    let worker = client.worker;
    let job_bytes = net.block_on(client.fetch_job())?;
    let (spec, model) = job::decode(&job_bytes)?;
    let (width, classes) = model_widths(&model)?;
    let seed = spec.seed ^ (u64::from(worker) << 32);
    let mut source: Box<dyn RowSource> = match run.data {
        WorkerData::Loaded(d, r) => Box::new(MemoryRows::new(d, r, spec.shuffle, seed)),
        WorkerData::File(p, shard) => {
            let cols = spec.data_columns()?;
            if !cols.transforms.unfitted().is_empty() {
                bail!(
                    "the server's job has a standard step without mean and std; give them to the server's --transform"
                );
            }
            if too_large_for_memory(&p, &cols, width, spec.in_memory_max_bytes)? {
                let options = StreamOptions { shuffle_buffer: spec.shuffle_buffer, shuffle: spec.shuffle, seed };
                let shard = shard.map(|(i, n)| (i, n, spec.batch_size));
                Box::new(StreamedRows::open_shard(&p, &cols, width, classes, options, shard)?)
            } else {
                let d = Dataset::load(&p, &cols, width, classes)?;
                let range = match shard {
                    Some((i, n)) => contiguous_shards(d.rows, n, spec.batch_size)?[i].clone(),
                    None => 0..d.rows,
                };
                Box::new(MemoryRows::new(Arc::new(d), range, spec.shuffle, seed))
            }
        }
    };
    let shape = source.shape();
    if shape.rows == 0 {
        bail!("worker {worker} has no rows");
    }
    let loss = spec.loss.clone().unwrap_or_else(|| default_loss(shape.label_width, classes).to_string());
    let config = spec.session_config(&loss, shape.sparse)?;
    let mut runtime = Runtime::open(run.device, run.adapter)?;
    // A fixed batch is kept whatever the rows (a last partial batch is masked).
    let batch = crate::training::model_io::fixed_batch(&model)?.unwrap_or(spec.batch_size.min(shape.rows));
    let session = TrainSession::with_config(&model, &mut runtime, batch, &config)?;
    if session.target_width() != shape.label_width {
        bail!(
            "loss `{loss}` takes {} target value(s) per row, the labels have {}",
            session.target_width(),
            shape.label_width
        );
    }
    let mut replica = SessionReplica { session, rows: 0, x: Vec::new(), y: Vec::new() };
    let mut conn = Reconnecting::new(client, opts, run.reconnect_timeout);
    if let Some(p) = &run.ack_log {
        conn = conn.with_ack_log(p)?;
    }
    let mut link = QuicLink::start(net, conn, spec.trainer.kind.worker() != WorkerSide::EpochAverage);
    let mut policy = WorkerPolicy::new(spec.trainer, replica.session.layout().trainable_len());
    policy.start(&mut replica, &mut link)?;
    let start_epoch = run.start_epoch.min(spec.epochs);
    let schedule = Schedule { epochs: spec.epochs, batch, start_epoch, skip_batches: 0, first_step: 0 };
    let mut hooks = WorkerHooks {
        worker,

        replica: &mut replica,
        link: &mut link,
        policy: &mut policy,
        stop: &run.stop,
        history: WorkerHistory { worker, rows: shape.rows, stopped: "completed".into(), ..Default::default() },
        started: Instant::now(),
        wait_before: 0.0,
        parallelism_factor: spec.parallelism_factor,
        epochs: spec.epochs,
        verbose: run.verbose,
    };
    let (ended, _) = train_epochs(&schedule, source.as_mut(), &mut hooks).map_err(|e| {
        // A diverging worker says which it is; other errors (the link's) name it already.
        if e.is::<NonFiniteLoss>() { e.context(format!("worker {worker}")) } else { e }
    })?;
    let (mut h, started) = (std::mem::take(&mut hooks.history), hooks.started);
    if ended == Ended::Stopped {
        h.stopped = "stopped".into();
    }
    policy.finish(&mut replica, &mut link)?;
    let st = link.stats();
    h.seconds = started.elapsed().as_secs_f64();
    h.commits_acknowledged = st.commits;
    h.reconnects = st.reconnects;
    h.net_wait_fraction = if h.seconds > 0.0 { st.wait_s / h.seconds } else { 0.0 };
    let final_weights =
        if spec.trainer.kind.worker() == WorkerSide::Independent { replica.params()? } else { Vec::new() };
    link.finish(serde_json::to_vec(&h)?, final_weights)?;
    Ok(h)
}

/// A worker around the shared loop: its trainer's policy at each step and epoch, its history.
struct WorkerHooks<'a> {
    worker: u32,
    replica: &'a mut SessionReplica,
    link: &'a mut QuicLink,
    policy: &'a mut WorkerPolicy,
    stop: &'a AtomicBool,
    history: WorkerHistory,
    started: Instant,
    /// Seconds the link had waited before the current step.
    wait_before: f64,
    parallelism_factor: usize,
    epochs: usize,
    verbose: bool,
}

impl EpochHooks for WorkerHooks<'_> {
    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Between parts of the rows (`--parallelism-factor`), the worker re-synchronises.
    fn before_batch(&mut self, batch: usize, batches: usize) -> Result<()> {
        let part = batches.div_ceil(self.parallelism_factor.max(1)).max(1);
        if batch > 0 && batch.is_multiple_of(part) {
            self.policy.resync(self.replica, self.link)?;
        }
        Ok(())
    }

    fn train_batch(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) -> Result<StepStats> {
        // The replica takes the batch's buffers (no copy on the step's path).
        std::mem::swap(&mut self.replica.x, x);
        std::mem::swap(&mut self.replica.y, y);
        self.replica.rows = rows;
        self.wait_before = self.link.stats().wait_s;
        self.policy.step(self.replica, self.link)
    }

    fn after_step(&mut self, at: StepAt, s: &StepStats, _: &EpochSummary) -> Result<()> {
        let st = self.link.stats();
        self.history.steps.push(WorkerStep {
            step: at.step,
            epoch: at.epoch,
            loss: s.loss,
            accuracy: s.accuracy,
            clock: st.clock,
            staleness: st.staleness,
            net_wait_s: st.wait_s - self.wait_before,
            time: self.started.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    fn end_epoch(&mut self, epoch: usize, summary: &EpochSummary) -> Result<bool> {
        self.policy.end_epoch(self.replica, self.link, epoch as u64)?;
        self.link.epoch_done(epoch as u64)?;
        if self.verbose {
            eprintln!(
                "worker {} epoch {}/{}: loss {:.4} accuracy {:.4} (server clock {})",
                self.worker,
                epoch + 1,
                self.epochs,
                summary.loss,
                summary.accuracy,
                self.link.stats().clock
            );
        }
        Ok(true)
    }
}
