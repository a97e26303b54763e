//! A training session: the model's training graph compiled once for the batch size, run one batch
//! at a time. A partial last batch is padded and masked (row weight 0), so every row is trained and
//! the loss divides by the real rows only.

use anyhow::{Result, bail};
use distk_engine::autodiff::{TARGET_INPUT, TrainingSpec, WEIGHT_INPUT, build_training_graph, fuse_output};
use distk_engine::optimizer::Optimizer;
use distk_engine::training_rewrite::{SEED_INPUT, TrainingOptions, rewrite_for_training};
use distk_engine::{Executor, LossKind, OptimizerState};
use distk_onnx::OnnxModel;

use crate::runtime::Runtime;

/// What one step reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Mean loss over the batch's rows (before the update).
    pub loss: f32,
    /// Accuracy over the batch's rows (before the update).
    pub accuracy: f32,
}

/// Everything a training session is built from, besides the model and the batch size.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The Keras loss name.
    pub loss: String,
    /// Labels are class indices.
    pub sparse_labels: bool,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Fuse a trailing Softmax/Sigmoid into the cross-entropy (false: the loss reads probabilities).
    pub fuse: bool,
    /// BatchNorm momentum and inserted dropout.
    pub training: TrainingOptions,
    /// Import choices (added biases).
    pub import: distk_onnx::ImportOptions,
    /// Seed of the dropout masks.
    pub seed: u64,
    /// Cross-entropy on the output as logits (true) or probabilities (false); None: logits unless
    /// the model ends in Softmax/Sigmoid ([`distk_engine::autodiff::fuse_output`]).
    pub from_logits: Option<bool>,
}

impl SessionConfig {
    /// Sparse cross-entropy, fused, with defaults for the rest.
    pub fn new(optimizer: Optimizer) -> Self {
        SessionConfig {
            loss: "sparse_categorical_crossentropy".into(),
            sparse_labels: true,
            optimizer,
            fuse: true,
            training: TrainingOptions::default(),
            import: distk_onnx::ImportOptions::default(),
            seed: 0,
            from_logits: None,
        }
    }
}

/// A model compiled for training on one device.
pub struct TrainSession {
    exec: Box<dyn Executor>,
    /// Rows per step.
    pub batch: usize,
    /// Features per row.
    pub row_width: usize,
    /// Model outputs per row.
    pub output_width: usize,
    /// The loss as the engine computes it.
    pub loss: LossKind,
    x: Vec<f32>,
    target: Vec<f32>,
    weight: Vec<f32>,
    /// For each graph input, which buffer feeds it (0 features, 1 targets, 2 weights, 3 seed).
    feeds: Vec<usize>,
    seed: u32,
    steps: u32,
}

impl TrainSession {
    /// Imports `model` for `batch` rows and builds its training graph with `loss` (a Keras name)
    /// and `optimizer`. `sparse_labels`: labels are class indices (else one target per output).
    /// A trailing Softmax or Sigmoid is fused into the cross-entropy (as Keras does on the TF backend).
    pub fn new(
        model: &OnnxModel,
        runtime: &mut Runtime,
        batch: usize,
        loss: &str,
        sparse_labels: bool,
        optimizer: Optimizer,
    ) -> Result<Self> {
        let config = SessionConfig { loss: loss.to_string(), sparse_labels, ..SessionConfig::new(optimizer) };
        Self::with_config(model, runtime, batch, &config)
    }

    /// [`TrainSession::new`] with every choice spelled out.
    pub fn with_config(model: &OnnxModel, runtime: &mut Runtime, batch: usize, config: &SessionConfig) -> Result<Self> {
        let (loss, sparse_labels, optimizer, fuse, options, seed) =
            (config.loss.as_str(), config.sparse_labels, config.optimizer, config.fuse, &config.training, config.seed);
        if batch == 0 {
            bail!("--batch-size must be at least 1");
        }
        crate::training::model_io::check_fixed_batch(model, batch)?;
        let imported = distk_onnx::import_with(model, batch, &config.import)?;
        let g = imported.graph;
        if g.inputs.len() != 1 || g.outputs.len() != 1 {
            bail!("distk-gpu trains models with one input and one output");
        }
        let row_width = distk_engine::shape::numel(g.shape(g.inputs[0])) / batch;
        let out_shape = g.shape(g.outputs[0]).to_vec();
        let output_width = distk_engine::shape::numel(&out_shape) / batch;
        let g = rewrite_for_training(g, options)?;
        let (mut prediction, mut kind) = fuse_output(&g, loss, sparse_labels, config.from_logits)?;
        if !fuse && kind.on_logits() {
            prediction = g.outputs[0];
            kind = match kind {
                LossKind::SparseCategoricalLogits => LossKind::SparseCategoricalProbs,
                LossKind::CategoricalLogits => LossKind::CategoricalProbs,
                _ => LossKind::BinaryProbs,
            };
        }
        let target_shape = if kind.sparse_targets() { vec![batch] } else { g.shape(prediction).to_vec() };
        let spec = TrainingSpec { loss: kind, prediction, target_shape, optimizer };
        let train = build_training_graph(g, &spec)?;
        let feeds = train
            .inputs
            .iter()
            .map(|&v| match train.values[v].name.as_str() {
                TARGET_INPUT => 1,
                WEIGHT_INPUT => 2,
                SEED_INPUT => 3,
                _ => 0,
            })
            .collect();
        let exec = runtime.compile(train)?;
        let target_width = if kind.sparse_targets() { 1 } else { output_width };
        Ok(TrainSession {
            exec,
            batch,
            row_width,
            output_width,
            loss: kind,
            x: vec![0.0; batch * row_width],
            target: vec![0.0; batch * target_width],
            weight: vec![0.0; batch],
            feeds,
            seed: (seed ^ (seed >> 32)) as u32,
            steps: 0,
        })
    }

    /// Trains on `rows` rows (at most the batch size): features row-major, targets as class
    /// indices (sparse) or one row of targets per row.
    pub fn step(&mut self, rows: usize, features: &[f32], targets: &[f32]) -> Result<StepStats> {
        if rows == 0 || rows > self.batch {
            bail!("a step takes 1 to {} rows, {rows} given", self.batch);
        }
        let tw = self.target.len() / self.batch;
        if features.len() != rows * self.row_width || targets.len() != rows * tw {
            bail!("step: {} features and {} targets for {rows} rows", features.len(), targets.len());
        }
        self.x[..features.len()].copy_from_slice(features);
        self.x[features.len()..].iter_mut().for_each(|v| *v = 0.0);
        self.target[..targets.len()].copy_from_slice(targets);
        self.target[targets.len()..].iter_mut().for_each(|v| *v = 0.0);
        self.weight.iter_mut().enumerate().for_each(|(i, w)| *w = if i < rows { 1.0 } else { 0.0 });
        // A new dropout mask every step: the seed's bits travel in an f32 slot unchanged.
        self.steps = self.steps.wrapping_add(1);
        let seed = [f32::from_bits(self.seed.wrapping_mul(0x9E37_79B9).wrapping_add(self.steps))];
        let inputs: Vec<&[f32]> = self
            .feeds
            .iter()
            .map(|&f| match f {
                0 => self.x.as_slice(),
                1 => self.target.as_slice(),
                2 => self.weight.as_slice(),
                _ => seed.as_slice(),
            })
            .collect();
        let out = self.exec.run(&inputs)?;
        Ok(StepStats { loss: out[0][0], accuracy: out[1][0] })
    }

    /// Target values per row the loss takes (1 for class indices).
    pub fn target_width(&self) -> usize {
        self.target.len() / self.batch
    }

    /// The flat parameter buffer.
    pub fn params(&mut self) -> Result<Vec<f32>> {
        let mut p = vec![0.0; self.exec.graph().layout.total_len()];
        self.exec.read_params(&mut p)?;
        Ok(p)
    }

    /// Replaces the flat parameter buffer.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        Ok(self.exec.write_params(p)?)
    }

    /// The parameter layout.
    pub fn layout(&self) -> &distk_engine::ParamLayout {
        &self.exec.graph().layout
    }

    /// The optimizer's state.
    pub fn optimizer_state(&mut self) -> Result<OptimizerState> {
        Ok(self.exec.optimizer_state()?)
    }

    /// Restores the optimizer's state.
    pub fn set_optimizer_state(&mut self, s: &OptimizerState) -> Result<()> {
        Ok(self.exec.set_optimizer_state(s)?)
    }
}
