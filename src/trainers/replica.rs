//! A worker's local model as the trainers see it: its weights (read and written at exchanges) and
//! one optimizer step on the batch the worker loaded.

use anyhow::Result;

use crate::training::{StepStats, TrainSession};

/// The local model of a worker.
pub trait Replica {
    /// The flat weights (parameters and BatchNorm running statistics).
    fn params(&mut self) -> Result<Vec<f32>>;
    /// Replaces the flat weights.
    fn set_params(&mut self, w: &[f32]) -> Result<()>;
    /// One step of the worker optimizer on the loaded batch (its state is kept across pulls).
    fn train_step(&mut self) -> Result<StepStats>;
}

/// A [`TrainSession`] with the batch to train next.
pub struct SessionReplica {
    /// The compiled training graph.
    pub session: TrainSession,
    /// Rows of the loaded batch.
    pub rows: usize,
    /// Its features, row-major.
    pub x: Vec<f32>,
    /// Its targets.
    pub y: Vec<f32>,
}

impl Replica for SessionReplica {
    fn params(&mut self) -> Result<Vec<f32>> {
        self.session.params()
    }
    fn set_params(&mut self, w: &[f32]) -> Result<()> {
        self.session.set_params(w)
    }
    fn train_step(&mut self) -> Result<StepStats> {
        self.session.step(self.rows, &self.x, &self.y)
    }
}
