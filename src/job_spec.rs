//! The one description of a training job, without clap: the options as a user gives them
//! ([`TrainerOptions`], [`TrainOptions`]: what the CLI's flags convert into, what the job server's
//! HTTP requests and job files hold), and the [`JobSpec`] they resolve to (trainer defaults filled
//! in, every value checked): what `run` trains, what a parameter server sends its workers, what the
//! job server runs. Flags other issues add travel here.

use anyhow::{Result, bail};
use distk_engine::training_rewrite::TrainingOptions;
use distk_onnx::ImportOptions;
use serde::{Deserialize, Serialize};

use crate::data::FeatureColumns;
use crate::data::dataset::DataColumns;
use crate::trainers::{TrainerKind, TrainerParams};
use crate::training::{SessionConfig, parse_optimizer};
use crate::transform::Transforms;

/// The trainer and its hyper-parameters as given; unset ones take the original's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerOptions {
    /// The algorithm (None: the caller's default).
    pub trainer: Option<TrainerKind>,
    /// Local steps between exchanges.
    pub communication_window: Option<usize>,
    /// The elastic force's rho.
    pub rho: Option<f32>,
    /// The trainer-level learning rate (ADAG's gamma, the elastic trainers' eta).
    pub elastic_lr: Option<f32>,
    /// EAMSGD's momentum.
    pub momentum: Option<f32>,
    /// Parts each worker's rows are cut into.
    pub parallelism_factor: usize,
    /// No overlap of communication and computation.
    pub no_overlap: bool,
}

/// What and how to train, as given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Passes over the data.
    pub epochs: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// The optimizer (Keras name).
    pub optimizer: String,
    /// Its learning rate (None: the Keras default).
    pub learning_rate: Option<f32>,
    /// Its other hyper-parameters (`key=value,...`).
    pub optimizer_args: String,
    /// The Keras loss (None: chosen from the labels).
    pub loss: Option<String>,
    /// The features column(s).
    pub features_col: String,
    /// The label column.
    pub label_col: String,
    /// Shuffle the rows every epoch.
    pub shuffle: bool,
    /// Seed of shuffling and dropout.
    pub seed: u64,
    /// BatchNorm momentum where the model declares none.
    pub bn_momentum: f32,
    /// Trainable zero biases where the export dropped them.
    pub add_missing_biases: bool,
    /// Dropout after nodes (`NODE=RATE`).
    pub dropout: Vec<String>,
    /// Float initializers trained whatever the importer decides (`--trainable`).
    #[serde(default)]
    pub trainable: Vec<String>,
    /// Float initializers kept frozen whatever the importer decides (`--frozen`).
    #[serde(default)]
    pub frozen: Vec<String>,
    /// Cross-entropy on the output as logits or probabilities (`--from-logits`; None: logits
    /// unless the model ends in Softmax/Sigmoid).
    #[serde(default)]
    pub from_logits: Option<bool>,
    /// Steps applied to the data as it is read (`--transform KIND:INPUT:OUTPUT[:args]`).
    #[serde(default)]
    pub transforms: Vec<String>,
    /// Rows held for shuffling when the data is streamed.
    #[serde(default = "default_shuffle_buffer")]
    pub shuffle_buffer: usize,
    /// Decoded training data up to this size is held in memory; larger data is streamed.
    #[serde(default = "default_in_memory_max_bytes")]
    pub in_memory_max_bytes: u64,
}

/// The default `--shuffle-buffer`: 65,536 rows.
pub fn default_shuffle_buffer() -> usize {
    65_536
}

/// The default `--in-memory-max-bytes`: 1 GiB of decoded features.
pub fn default_in_memory_max_bytes() -> u64 {
    1 << 30
}

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
    /// Float initializers trained whatever the importer decides.
    #[serde(default)]
    pub trainable: Vec<String>,
    /// Float initializers kept frozen whatever the importer decides.
    #[serde(default)]
    pub frozen: Vec<String>,
    /// Cross-entropy on the output as logits or probabilities (None: decided by the model's end).
    #[serde(default)]
    pub from_logits: Option<bool>,
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
    /// Steps applied to the data as it is read; `standard` steps fitted (by `run` on its
    /// training data) before the spec reaches a worker.
    #[serde(default)]
    pub transforms: Vec<String>,
    /// Rows held for shuffling when the data is streamed.
    #[serde(default = "default_shuffle_buffer")]
    pub shuffle_buffer: usize,
    /// Decoded training data up to this size is held in memory; larger data is streamed.
    #[serde(default = "default_in_memory_max_bytes")]
    pub in_memory_max_bytes: u64,
}

impl JobSpec {
    /// The parsed steps.
    pub fn transforms(&self) -> Result<Transforms> {
        Ok(Transforms::parse(&self.transforms)?)
    }

    /// What a worker's rows are read with.
    pub fn data_columns(&self) -> Result<DataColumns> {
        Ok(DataColumns {
            features: FeatureColumns::parse(&self.features_col),
            label: self.label_col.clone(),
            transforms: self.transforms()?,
            regression: crate::training::is_regression_loss(self.loss.as_deref()),
        })
    }

    /// Fits the `standard` steps on `train` (mean and std from all its rows) and writes them
    /// back fitted, so that validation data and every worker scale alike. Prints each fitted step.
    pub fn fit_transforms(&mut self, train: &std::path::Path) -> Result<()> {
        let mut t = self.transforms()?;
        if t.unfitted().is_empty() {
            return Ok(());
        }
        crate::data::fit::fit_standard_steps(train, &mut t)?;
        for i in 0..t.0.len() {
            if t.0[i].text != t.0[i].to_text() {
                eprintln!("fitted on the training data: --transform '{}'", t.0[i].to_text());
            }
        }
        self.transforms = t.texts();
        Ok(())
    }

    /// The training session's configuration for labels that are class indices (`sparse`) or not.
    pub fn session_config(&self, loss: &str, sparse: bool) -> Result<SessionConfig> {
        let optimizer = parse_optimizer(&self.optimizer, self.learning_rate, &self.optimizer_args)?;
        Ok(SessionConfig {
            loss: loss.to_string(),
            sparse_labels: sparse,
            training: TrainingOptions { bn_momentum: self.bn_momentum, dropout_after: self.dropout.clone() },
            import: ImportOptions {
                add_missing_biases: self.add_missing_biases,
                trainable: self.trainable.clone(),
                frozen: self.frozen.clone(),
                ..Default::default()
            },
            seed: self.seed,
            from_logits: self.from_logits,
            ..SessionConfig::new(optimizer)
        })
    }

    /// The job described by the options as given, trained by `kind` (the caller's default when
    /// `trainer.trainer` is unset); checks every value.
    pub fn resolve(job: &TrainOptions, trainer: &TrainerOptions, kind: TrainerKind) -> Result<JobSpec> {
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
        Transforms::parse(&job.transforms)?;
        if job.shuffle_buffer == 0 {
            bail!("--shuffle-buffer must be at least 1 row");
        }
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
            trainable: job.trainable.clone(),
            frozen: job.frozen.clone(),
            from_logits: job.from_logits,
            seed: job.seed,
            shuffle: job.shuffle,
            parallelism_factor: trainer.parallelism_factor,
            features_col: job.features_col.clone(),
            label_col: job.label_col.clone(),
            transforms: job.transforms.clone(),
            shuffle_buffer: job.shuffle_buffer,
            in_memory_max_bytes: job.in_memory_max_bytes,
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
