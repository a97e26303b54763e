//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::runtime::DeviceChoice;

/// Train and run ONNX models exported from Keras or PyTorch on GPUs (WGSL through wgpu).
#[derive(Debug, Parser)]
#[command(name = "distk-gpu", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// Train a model on labelled data and write the trained model as ONNX.
    Run(Box<RunArgs>),
    /// Loss and accuracy of a model on labelled data.
    Evaluate(EvaluateArgs),
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
    /// The training algorithm (one device: `single`).
    #[arg(long, default_value = "single")]
    pub trainer: String,
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
    /// Validation rows, evaluated after every epoch.
    #[arg(long)]
    pub validation_data: Option<PathBuf>,
    /// Shuffle the rows every epoch (seeded by --seed).
    #[arg(long)]
    pub shuffle: bool,
    /// Seed of the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the trained model.
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
    /// Keep the latest training state here.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Continue from the checkpoint in --checkpoint-dir.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArgs,
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
    #[arg(long, value_enum, default_value = "auto")]
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
    /// Output Parquet file (columns `prediction`, `predicted_class`).
    #[arg(long)]
    pub out: PathBuf,
    /// The features column, or several scalar columns separated by commas.
    #[arg(long, default_value = "features")]
    pub features_col: String,
    /// Rows per forward pass.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `forward` (forward passes and the matmul sweep) or `train` (training steps).
    #[arg(default_value = "forward", value_parser = ["forward", "train"])]
    pub suite: String,
    /// Folder holding keras_mlp_mnist.onnx and keras_cnn.onnx.
    #[arg(long, default_value = "examples/models")]
    pub models_dir: PathBuf,
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
}
