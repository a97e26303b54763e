//! The command line.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::job_spec::{TrainOptions, TrainerOptions};
use crate::punchcard::client::ServerAccess;
use crate::runtime::DeviceChoice;
use crate::trainers::TrainerKind;

/// Train and run ONNX models exported from Keras or PyTorch on GPUs (WGSL through wgpu).
#[derive(Debug, Parser)]
#[command(name = "distk-gpu", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Most memory a model's buffers may take, e.g. 512M or 8G (default: 90% of this machine's
    /// memory); a model that needs more at its batch size is refused, naming its largest tensor.
    #[arg(long, global = true, value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

/// Parses a size in bytes with an optional binary suffix: `512M`, `8G`, `1.5G`, `4096`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().trim_end_matches(['b', 'B']).trim_end_matches('i');
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, ' '),
    };
    let scale: u64 = match unit {
        ' ' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        _ => return Err(format!("`{text}`: give bytes, or a number with K, M, G or T (e.g. 512M, 8G)")),
    };
    let n: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a size (e.g. 512M, 8G)"))?;
    let bytes = n * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("`{text}`: a size must be at least one byte"));
    }
    Ok(bytes as u64)
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the GPU adapters found and which one would be used.
    Devices(DevicesArgs),
    /// Describe a model: inputs, outputs, ops, parameters, and what its export lost for training.
    Inspect(InspectArgs),
    /// Run a model over a Parquet or CSV file and write its predictions as Parquet.
    Predict(PredictArgs),
    /// Train a model on labelled data and write the trained model as ONNX (with --workers: a
    /// parameter server and local workers).
    Run(Box<RunArgs>),
    /// Serve the centre of a multi-host run to `worker`s over QUIC.
    Ps(Box<PsArgs>),
    /// Train as one worker of a multi-host run.
    Worker(Box<WorkerArgs>),
    /// Make a secret for an identity and add it to a secrets file.
    Secret(SecretArgs),
    /// Run the job server.
    Punchcard(Box<PunchcardArgs>),
    /// One job of the job server, in its own process (started by `punchcard`).
    #[command(hide = true)]
    PunchcardJob(PunchcardJobArgs),
    /// Send a training job to a job server.
    Submit(Box<SubmitArgs>),
    /// Follow, fetch, cancel or list jobs on a job server.
    Job(Box<JobCmdArgs>),
    /// Loss and accuracy of a model on labelled data.
    Evaluate(EvaluateArgs),
    /// Apply dist-keras' transformers to a dataset and write it as Parquet (all columns kept).
    Transform(TransformArgs),
    /// Measure forward throughput and matrix-product speed beside CPU baselines.
    Bench(BenchArgs),
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The ONNX model (exported from Keras or PyTorch).
    pub model: PathBuf,
    /// Training rows: Parquet or CSV with features and an integer label column.
    #[arg(long)]
    pub data: PathBuf,
    /// Workers training replicas beside a parameter server on this machine (QUIC over loopback);
    /// each trains a contiguous shard of the rows.
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// The trainer and its hyper-parameters.
    #[command(flatten)]
    pub trainer: TrainerArgs,
    /// What and how to train.
    #[command(flatten)]
    pub job: JobArgs,
    /// Validation rows, evaluated after every epoch (with --workers: the centre, after every worker
    /// finished the epoch).
    #[arg(long)]
    pub validation_data: Option<PathBuf>,
    /// Where to write the trained model (ensembles: NAME-0.onnx, NAME-1.onnx, ...).
    #[arg(long, default_value = "trained.onnx")]
    pub out: PathBuf,
    /// Write the history as JSON here.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Write the history as CSV here.
    #[arg(long)]
    pub history_csv: Option<PathBuf>,
    /// Draw loss and accuracy per epoch into this .png or .svg file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Stop after the first epoch whose loss (validation loss when given) is at most this.
    #[arg(long)]
    pub target_loss: Option<f64>,
    /// Stop after the first epoch whose accuracy (validation accuracy when given) is at least this.
    #[arg(long)]
    pub target_accuracy: Option<f64>,
    /// Keep the latest training state here (with --workers: the parameter server's snapshots and
    /// write-ahead log).
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Steps between checkpoints (with --workers: updates of the centre between snapshots).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Continue from the checkpoint in --checkpoint-dir.
    #[arg(long)]
    pub resume: bool,
    /// With --workers and --checkpoint-dir: snapshots only, no write-ahead log (faster commits, but
    /// a crash of the server loses what it acknowledged since the last snapshot).
    #[arg(long)]
    pub no_wal: bool,
    /// Copy every snapshot of --checkpoint-dir to this s3:// prefix as well (with --resume, an
    /// empty --checkpoint-dir is filled from it: a server can resume on another machine; the
    /// write-ahead log stays local).
    #[arg(long, value_name = "S3_PREFIX")]
    pub snapshot_copy: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The trainer (`--trainer`) and its hyper-parameters; unset ones take the original's defaults.
#[derive(Debug, Args, Clone)]
pub struct TrainerArgs {
    /// single, averaging, ensemble, downpour, agn, adag, dynsgd, aeasgd or eamsgd (default: single
    /// for one worker, adag for several).
    #[arg(long, value_parser = trainer_parser())]
    pub trainer: Option<TrainerKind>,
    /// Local steps between exchanges with the parameter server (defaults: downpour 5, agn 12,
    /// adag 5, dynsgd 5, aeasgd/eamsgd 32).
    #[arg(long)]
    pub communication_window: Option<usize>,
    /// The elastic force's rho (aeasgd, eamsgd; default 5.0).
    #[arg(long)]
    pub rho: Option<f32>,
    /// The trainer-level learning rate: ADAG's gamma (default 1.0; the thesis used 1e-4), the elastic
    /// trainers' eta (default 0.1; alpha = rho x eta).
    #[arg(long)]
    pub elastic_lr: Option<f32>,
    /// EAMSGD's momentum d (default 0.9).
    #[arg(long)]
    pub momentum: Option<f32>,
    /// Each worker's rows are cut into this many parts, and the worker re-synchronises with the
    /// centre between parts (dist-keras ran parallelism_factor x workers partitions in waves).
    #[arg(long, default_value_t = 1)]
    pub parallelism_factor: usize,
    /// Exchange with the server before going on (no overlap of communication and computation).
    #[arg(long)]
    pub no_overlap: bool,
}

/// What and how to train: the settings a parameter server hands its workers.
#[derive(Debug, Args, Clone)]
pub struct JobArgs {
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Rows per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// sgd, adam, adamw, rmsprop, adagrad or adadelta (Keras 3 names and defaults).
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate (default: the optimizer's Keras default).
    #[arg(long)]
    pub learning_rate: Option<f32>,
    /// Other hyper-parameters, e.g. `momentum=0.9,nesterov=true` or `beta_1=0.9,weight_decay=0.01`.
    #[arg(long, default_value = "")]
    pub optimizer_args: String,
    /// sparse_categorical_crossentropy (the default for integer labels), categorical_crossentropy (the
    /// default for one-hot list labels), binary_crossentropy (the default for one output),
    /// mean_squared_error, mean_absolute_error.
    #[arg(long)]
    pub loss: Option<String>,
    /// The features column, or several scalar columns separated by commas.
    #[arg(long, default_value = "features")]
    pub features_col: String,
    /// The label column (integer class indices).
    #[arg(long, default_value = "label")]
    pub label_col: String,
    /// Shuffle the rows every epoch (seeded by --seed).
    #[arg(long)]
    pub shuffle: bool,
    /// Seed of the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Momentum of BatchNormalization running statistics where the model declares none (tf2onnx
    /// writes none; Keras' default is 0.99).
    #[arg(long, default_value_t = 0.99)]
    pub bn_momentum: f32,
    /// Give every MatMul, Gemm and Conv without a bias a trainable zero bias (stock Keras exports
    /// drop zero biases); the written model contains them.
    #[arg(long)]
    pub add_missing_biases: bool,
    /// Insert Dropout after a node in training (`NODE=RATE`; `inspect` lists node names). Repeatable.
    #[arg(long = "dropout", value_name = "NODE=RATE")]
    pub dropout: Vec<String>,
    /// A dist-keras transformer applied to the rows as they are read, `KIND:INPUT:OUTPUT[:args]`
    /// (repeatable, in order): one-hot (output_dim=), min-max (o_min=,o_max=,n_min=,n_max=),
    /// standard ([mean=..;..,std=..;..]: fitted on the training data when not given), reshape
    /// (shape=AxB), dense, label-index ([threshold=0.55] or argmax=true), binary-label (label=).
    #[arg(long = "transform", value_name = "STEP")]
    pub transform: Vec<String>,
    /// Rows held for shuffling when the training data is streamed (larger than
    /// --in-memory-max-bytes): row groups are read in a seeded order into a buffer of this many
    /// rows, each buffer-full shuffled.
    #[arg(long, default_value_t = crate::job_spec::default_shuffle_buffer())]
    pub shuffle_buffer: usize,
    /// Training data whose decoded features exceed this many bytes is streamed from its Parquet
    /// row groups instead of held in memory (0: always stream).
    #[arg(long, default_value_t = crate::job_spec::default_in_memory_max_bytes())]
    pub in_memory_max_bytes: u64,
    /// Train this float initializer although the importer freezes it (it trains weights of
    /// parametrised ops only; `inspect` shows each decision). Repeatable.
    #[arg(long = "trainable", value_name = "NAME")]
    pub trainable: Vec<String>,
    /// Keep this float initializer frozen although the importer would train it. Repeatable.
    #[arg(long = "frozen", value_name = "NAME")]
    pub frozen: Vec<String>,
    /// Cross-entropy on the model's output as logits (true) or probabilities (false). Default: the
    /// output of a trailing Softmax/Sigmoid is fused as Keras does, any other output is logits
    /// (PyTorch models end in a Linear layer).
    #[arg(long, value_name = "BOOL")]
    pub from_logits: Option<bool>,
}

/// `punchcard`.
#[derive(Debug, Args)]
pub struct PunchcardArgs {
    /// The secrets file (JSON list of {"secret", "identity"}).
    #[arg(long)]
    pub secrets: PathBuf,
    /// Address to listen on (TCP, HTTPS).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,
    /// Where job records, models and histories live (and the self-signed certificate).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// PEM certificate chain (default: a self-signed one kept in the state dir).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Folder under which jobs may name their data (no upload).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Most local workers a job may ask for.
    #[arg(long, default_value_t = 8)]
    pub max_workers: u32,
    /// Largest upload (model and data) in MiB.
    #[arg(long, default_value_t = 1024)]
    pub max_upload_mb: usize,
    /// Most memory each job's process may use, in MiB (default: half of this machine's memory);
    /// a job past it fails alone.
    #[arg(long)]
    pub job_max_memory_mb: Option<u64>,
    /// Most CPU time each job may use, in hours (default: no limit).
    #[arg(long)]
    pub job_max_cpu_hours: Option<f64>,
    /// Most connections held at once (default: the open-files limit less 256, at most 16384).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Most connections held at once from one address.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_address: usize,
    /// Most job uploads one identity may send at once.
    #[arg(long, default_value_t = 2)]
    pub max_uploads_per_identity: usize,
    /// Most MiB the jobs of one identity may keep on the server (uploads, models, histories).
    #[arg(long, default_value_t = 20480)]
    pub max_stored_mb_per_identity: u64,
    /// Where jobs train.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `punchcard-job` (internal): one job of the job server, in its own process.
#[derive(Debug, Args)]
pub struct PunchcardJobArgs {
    /// The job's folder (with its `launch.json`).
    pub job_dir: PathBuf,
}

/// How a client reaches and trusts a job server.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// The job server, e.g. https://jobs.example.org:8443.
    #[arg(long)]
    pub server: String,
    /// File holding your secret.
    #[arg(long)]
    pub secret_file: PathBuf,
    /// Trust the server whose certificate has this SHA-256 (printed by `punchcard`).
    #[arg(long, conflicts_with = "ca")]
    pub server_cert_sha256: Option<String>,
    /// Trust servers whose certificates chain to this PEM CA.
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

/// `submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The ONNX model to train.
    pub model: PathBuf,
    /// Where and how.
    #[command(flatten)]
    pub server: ServerArgs,
    /// A name for the job.
    #[arg(long)]
    pub job_name: String,
    /// Training rows on the server, relative to its data root.
    #[arg(long, conflicts_with = "upload_data")]
    pub data: Option<String>,
    /// Training rows to upload with the job (Parquet or CSV).
    #[arg(long)]
    pub upload_data: Option<PathBuf>,
    /// Validation rows on the server, relative to its data root.
    #[arg(long)]
    pub validation_data: Option<String>,
    /// Local workers of the job.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// The trainer and its hyper-parameters.
    #[command(flatten)]
    pub trainer: TrainerArgs,
    /// What and how to train.
    #[command(flatten)]
    pub job: JobArgs,
    /// Wait for the job to end (exit 1 if it failed).
    #[arg(long)]
    pub wait: bool,
}

/// `job`.
#[derive(Debug, Args)]
pub struct JobCmdArgs {
    /// status, wait, fetch, cancel, delete or list.
    #[arg(value_parser = ["status", "wait", "fetch", "cancel", "delete", "list"])]
    pub action: String,
    /// The job id (all actions but list).
    pub id: Option<String>,
    /// Where and how.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where `fetch` writes `<job-name>-<id>.onnx` and `.history.json`.
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// Seconds `wait` waits at most.
    #[arg(long, default_value_t = 86400)]
    pub timeout: u64,
}

/// `secret`.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// Who will hold the secret (jobs and workers are attributed to it).
    #[arg(long)]
    pub identity: String,
    /// The secrets file to add it to (created with mode 0600 if missing).
    #[arg(long, default_value = "secrets.json")]
    pub secrets: PathBuf,
    /// Write the bare secret to this new file (mode 0600) for its holder, instead of printing it
    /// (a shell redirect would leave it readable by others under the usual umask).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `ps`: the parameter server of a multi-host run.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// The ONNX model to train (sent to every worker).
    pub model: PathBuf,
    /// Address to listen on (UDP), e.g. 0.0.0.0:7070.
    #[arg(long, default_value = "0.0.0.0:7070")]
    pub listen: std::net::SocketAddr,
    /// Workers of the run (ids 0..N-1).
    #[arg(long)]
    pub workers: u32,
    /// The secrets file: a JSON list of {"secret", "identity"} (`distk-gpu secret` makes entries).
    #[arg(long)]
    pub secrets: PathBuf,
    /// PEM certificate chain (default: a self-signed certificate, kept in --checkpoint-dir if given).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The trainer and its hyper-parameters.
    #[command(flatten)]
    pub trainer: TrainerArgs,
    /// What and how the workers train.
    #[command(flatten)]
    pub job: JobArgs,
    /// Rows to evaluate the centre on after every epoch of every worker.
    #[arg(long)]
    pub validation_data: Option<PathBuf>,
    /// Where to write the trained model.
    #[arg(long, default_value = "trained.onnx")]
    pub out: PathBuf,
    /// Write the run's history as JSON here.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Write every worker step and centre validation as CSV here.
    #[arg(long)]
    pub history_csv: Option<PathBuf>,
    /// Draw loss and accuracy per epoch into this .png or .svg file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Keep the server's state durable here: snapshots and a write-ahead log of every change (what
    /// `--resume` recovers from).
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Updates between snapshots.
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Continue from the snapshot and log in --checkpoint-dir (workers reconnect on their own).
    #[arg(long)]
    pub resume: bool,
    /// Snapshots only, no write-ahead log (faster commits, but a crash loses what the server
    /// acknowledged since the last snapshot).
    #[arg(long)]
    pub no_wal: bool,
    /// Copy every snapshot of --checkpoint-dir to this s3:// prefix as well (with --resume, an
    /// empty --checkpoint-dir is filled from it: a server can resume on another machine; the
    /// write-ahead log stays local).
    #[arg(long, value_name = "S3_PREFIX")]
    pub snapshot_copy: Option<PathBuf>,
    /// Seconds to wait for every worker to join.
    #[arg(long, default_value_t = 300)]
    pub join_timeout: u64,
    /// Where the centre is evaluated.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `worker`: one worker of a multi-host run.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The parameter server's address, e.g. 10.0.0.5:7070 or ps.example.org:7070.
    #[arg(long)]
    pub connect: String,
    /// File holding this worker's secret (nothing else; surrounding whitespace is ignored).
    #[arg(long)]
    pub secret_file: PathBuf,
    /// Trust the server whose certificate has this SHA-256 (printed by `ps`).
    #[arg(long, conflicts_with = "ca")]
    pub server_cert_sha256: Option<String>,
    /// Trust servers whose certificates chain to this PEM CA.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The name in the server's certificate (default: the host of --connect).
    #[arg(long)]
    pub server_name: Option<String>,
    /// This worker's rows (Parquet or CSV).
    #[arg(long)]
    pub data: PathBuf,
    /// Train only contiguous shard I of N of --data (`I/N`, e.g. `2/8`), as `run --workers` splits.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Ask for this worker id (default: the server assigns one).
    #[arg(long)]
    pub worker_id: Option<u32>,
    /// Seconds to keep trying to reach the server: the first connection (with backoff) and
    /// reconnections after it went away (e.g. while `ps --resume` restarts).
    #[arg(long, default_value_t = 120)]
    pub reconnect_timeout: u64,
    /// Append a line per acknowledged commit to this file (`unix_ms worker seq clock`), so
    /// acknowledgements can be counted even if the worker is killed.
    #[arg(long)]
    pub ack_log: Option<PathBuf>,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `transform`.
#[derive(Debug, Args)]
pub struct TransformArgs {
    /// Input rows: Parquet, CSV or Arrow IPC; a file, a Spark part directory, a glob, or `-`.
    #[arg(long)]
    pub data: PathBuf,
    /// Output Parquet: a file, or a directory of parts when --data is a directory.
    #[arg(long)]
    pub out: PathBuf,
    /// `KIND:INPUT:OUTPUT[:key=value,...]`, applied in order (repeatable): one-hot (output_dim=),
    /// min-max (o_min=0,o_max=1,n_min=0,n_max=1), standard ([mean=..;..,std=..;..], else fitted
    /// on the data and printed), reshape (shape=AxB), dense, label-index ([threshold=0.55,
    /// default_index=0] or argmax=true), binary-label (label=).
    #[arg(long, value_name = "STEP", required = true)]
    pub step: Vec<String>,
}

/// `evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Labelled rows.
    #[arg(long)]
    pub data: PathBuf,
    /// The loss (Keras name; by default as `run` chooses it from the labels).
    #[arg(long)]
    pub loss: Option<String>,
    /// The features column(s).
    #[arg(long, default_value = "features")]
    pub features_col: String,
    /// The label column.
    #[arg(long, default_value = "label")]
    pub label_col: String,
    /// Rows per pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// A transformer applied to the rows as they are read (see `run --help`; repeatable).
    #[arg(long = "transform", value_name = "STEP")]
    pub transform: Vec<String>,
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Where a model runs.
#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    /// `auto`: a real GPU if present, else the CPU executor; `wgpu`: the WGSL executor on any adapter
    /// (lavapipe included); `cpu`: the CPU executor.
    #[arg(long, value_parser = device_parser(), default_value = "auto")]
    pub device: DeviceChoice,
    /// Adapter index from `distk-gpu devices` (implies the WGSL executor under `auto`).
    #[arg(long)]
    pub adapter: Option<usize>,
}

/// `devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Input rows: Parquet (a list<float32> column) or CSV (columns f0..fN-1).
    #[arg(long)]
    pub data: PathBuf,
    /// Output Parquet (columns: the kept ones, `prediction`, `predicted_class`): a file, or a
    /// directory with one part per input part when --data is a directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Input columns copied beside each prediction (comma-separated, e.g. `id`), so that Spark
    /// can join the predictions back.
    #[arg(long, default_value = "")]
    pub keep_cols: String,
    /// The features column, or several scalar columns separated by commas.
    #[arg(long, default_value = "features")]
    pub features_col: String,
    /// Rows per forward pass.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// A transformer applied to the rows as they are read (see `run --help`; repeatable).
    #[arg(long = "transform", value_name = "STEP")]
    pub transform: Vec<String>,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `forward` (forward passes and the matmul sweep), `train` (training steps) or `ps` (the
    /// parameter server's commit path on loopback).
    #[arg(default_value = "forward", value_parser = ["forward", "train", "ps"])]
    pub suite: String,
    /// Folder holding keras_mlp_mnist.onnx and keras_cnn.onnx.
    #[arg(long, default_value = "examples/models")]
    pub models_dir: PathBuf,
    /// `forward`/`train`: measure these ONNX files instead of the two bundled models (repeatable),
    /// e.g. `--model tests/fixtures/real/torch_lstm.onnx`.
    #[arg(long = "model")]
    pub models: Vec<PathBuf>,
    /// Matrix sizes of the matmul sweep.
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024,2048")]
    pub sizes: Vec<usize>,
    /// Rows per forward pass.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Timed repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Adapter index for the WGSL executor (default: the best one).
    #[arg(long)]
    pub adapter: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// `ps`: seconds per throughput point.
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// `ps`: where the write-ahead log is written (a temporary folder inside; it should be on the
    /// disk a parameter server would use, not tmpfs).
    #[arg(long, default_value = ".")]
    pub wal_dir: PathBuf,
}

/// `--trainer`: the registered trainers' names.
fn trainer_parser() -> impl TypedValueParser<Value = TrainerKind> {
    PossibleValuesParser::new(TrainerKind::ALL.iter().map(|k| k.name())).try_map(|s| s.parse::<TrainerKind>())
}

/// `--device`: auto, wgpu or cpu.
fn device_parser() -> impl TypedValueParser<Value = DeviceChoice> {
    PossibleValuesParser::new(DeviceChoice::ALL.map(DeviceChoice::name)).try_map(|s| s.parse::<DeviceChoice>())
}

impl TrainerArgs {
    /// The trainer options as the job description holds them.
    pub fn options(&self) -> TrainerOptions {
        TrainerOptions {
            trainer: self.trainer,
            communication_window: self.communication_window,
            rho: self.rho,
            elastic_lr: self.elastic_lr,
            momentum: self.momentum,
            parallelism_factor: self.parallelism_factor,
            no_overlap: self.no_overlap,
        }
    }
}

impl JobArgs {
    /// The training options as the job description holds them.
    pub fn options(&self) -> TrainOptions {
        TrainOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: self.optimizer.clone(),
            learning_rate: self.learning_rate,
            optimizer_args: self.optimizer_args.clone(),
            loss: self.loss.clone(),
            features_col: self.features_col.clone(),
            label_col: self.label_col.clone(),
            shuffle: self.shuffle,
            seed: self.seed,
            bn_momentum: self.bn_momentum,
            add_missing_biases: self.add_missing_biases,
            dropout: self.dropout.clone(),
            transforms: self.transform.clone(),
            shuffle_buffer: self.shuffle_buffer,
            in_memory_max_bytes: self.in_memory_max_bytes,
            trainable: self.trainable.clone(),
            frozen: self.frozen.clone(),
            from_logits: self.from_logits,
        }
    }
}

impl ServerArgs {
    /// How the job client reaches and trusts the server.
    pub fn access(&self) -> ServerAccess {
        ServerAccess {
            server: self.server.clone(),
            secret_file: self.secret_file.clone(),
            server_cert_sha256: self.server_cert_sha256.clone(),
            ca: self.ca.clone(),
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_read_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert!(parse_size("8X").is_err() && parse_size("-1G").is_err() && parse_size("G").is_err());
        assert!(parse_size("0.5").is_err() && parse_size("0").is_err());
    }
}
