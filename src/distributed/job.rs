//! The job a parameter server hands each worker: the hyper-parameters as JSON and the model's ONNX
//! bytes, so a worker needs only an address, a secret and its data.

use anyhow::{Context, Result, bail};
use distk_engine::training_rewrite::TrainingOptions;
use distk_onnx::{ImportOptions, OnnxModel};
use serde::{Deserialize, Serialize};

use crate::cli::{JobArgs, TrainerArgs};
use crate::trainers::{TrainerKind, TrainerParams};
use crate::training::{SessionConfig, parse_optimizer};

/// Everything a worker trains with, besides the model and its data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobSpec {
    /// The trainer and its hyper-parameters.
    pub trainer: TrainerParams,
    /// Passes over each worker's data.
    pub epochs: usize,
    /// Rows per local step.
    pub batch_size: usize,
    /// The worker optimizer (Keras name).
    pub optimizer: String,
    /// Its learning rate (None: the Keras default).
    pub learning_rate: Option<f32>,
    /// Its other hyper-parameters (`key=value,...`).
    pub optimizer_args: String,
    /// The Keras loss (None: chosen from the labels).
    pub loss: Option<String>,
    /// BatchNorm momentum where the model declares none.
    pub bn_momentum: f32,
    /// Dropout inserted after nodes.
    pub dropout: Vec<(String, f32)>,
    /// Trainable zero biases where the export dropped them.
    pub add_missing_biases: bool,
    /// Seed of shuffling and dropout.
    pub seed: u64,
    /// Shuffle each worker's rows every epoch.
    pub shuffle: bool,
    /// Parts each worker's rows are cut into, with a re-synchronisation between parts.
    pub parallelism_factor: usize,
    /// The features column(s).
    pub features_col: String,
    /// The label column.
    pub label_col: String,
}

impl JobSpec {
    /// The training session's configuration for labels that are class indices (`sparse`) or not.
    pub fn session_config(&self, loss: &str, sparse: bool) -> Result<SessionConfig> {
        let optimizer = parse_optimizer(&self.optimizer, self.learning_rate, &self.optimizer_args)?;
        Ok(SessionConfig {
            loss: loss.to_string(),
            sparse_labels: sparse,
            training: TrainingOptions { bn_momentum: self.bn_momentum, dropout_after: self.dropout.clone() },
            import: ImportOptions { add_missing_biases: self.add_missing_biases, ..Default::default() },
            seed: self.seed,
            ..SessionConfig::new(optimizer)
        })
    }
}

/// Parses `--dropout NODE=RATE` flags.
pub fn parse_dropout(flags: &[String]) -> Result<Vec<(String, f32)>> {
    let mut out = Vec::new();
    for d in flags {
        let Some((node, rate)) = d.rsplit_once('=') else {
            bail!("--dropout {d}: expected NODE=RATE, e.g. --dropout dense_1/Relu=0.5");
        };
        let rate: f32 = rate
            .parse()
            .ok()
            .filter(|r| (0.0..1.0).contains(r))
            .ok_or_else(|| anyhow::anyhow!("--dropout {d}: the rate must be a number in [0, 1)"))?;
        out.push((node.to_string(), rate));
    }
    Ok(out)
}

/// The job described by the command line.
pub fn from_args(job: &JobArgs, trainer: &TrainerArgs, kind: TrainerKind) -> Result<JobSpec> {
    if job.epochs == 0 || job.batch_size == 0 {
        bail!("--epochs and --batch-size must be at least 1");
    }
    if !(0.0..=1.0).contains(&job.bn_momentum) {
        bail!("--bn-momentum must be in [0, 1]");
    }
    if trainer.parallelism_factor == 0 {
        bail!("--parallelism-factor must be at least 1");
    }
    // Fails early on a bad optimizer name or argument.
    parse_optimizer(&job.optimizer, job.learning_rate, &job.optimizer_args)?;
    let mut params =
        TrainerParams::new(kind, trainer.communication_window, trainer.rho, trainer.elastic_lr, trainer.momentum)?;
    params.overlap = !trainer.no_overlap;
    Ok(JobSpec {
        trainer: params,
        epochs: job.epochs,
        batch_size: job.batch_size,
        optimizer: job.optimizer.clone(),
        learning_rate: job.learning_rate,
        optimizer_args: job.optimizer_args.clone(),
        loss: job.loss.clone(),
        bn_momentum: job.bn_momentum,
        dropout: parse_dropout(&job.dropout)?,
        add_missing_biases: job.add_missing_biases,
        seed: job.seed,
        shuffle: job.shuffle,
        parallelism_factor: trainer.parallelism_factor,
        features_col: job.features_col.clone(),
        label_col: job.label_col.clone(),
    })
}

/// Encodes a job: `[u32 LE json length][json][onnx bytes]`.
pub fn encode(spec: &JobSpec, model: &OnnxModel) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(spec)?;
    let mut out = Vec::with_capacity(4 + json.len() + model.bytes.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&model.bytes);
    Ok(out)
}

/// Decodes a job the server sent.
pub fn decode(bytes: &[u8]) -> Result<(JobSpec, OnnxModel)> {
    if bytes.len() < 4 {
        bail!("the job from the parameter server is truncated");
    }
    let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if 4 + n > bytes.len() {
        bail!("the job from the parameter server is truncated");
    }
    let spec: JobSpec =
        serde_json::from_slice(&bytes[4..4 + n]).context("the job from the parameter server does not parse")?;
    let model = OnnxModel::from_bytes(bytes[4 + n..].to_vec(), "<model from the parameter server>")?;
    Ok((spec, model))
}
