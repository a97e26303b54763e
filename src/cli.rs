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
    /// Measure forward throughput and matrix-product speed beside CPU baselines.
    Bench(BenchArgs),
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
