//! The training history: per-step and per-epoch records, written as JSON (and CSV).

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::data::atomic::write_atomically;

/// One training step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global step, from 0.
    pub step: u64,
    /// Epoch, from 0.
    pub epoch: usize,
    /// Batch loss before the update.
    pub loss: f32,
    /// Batch accuracy before the update.
    pub accuracy: f32,
    /// Seconds since the run started.
    pub time: f64,
}

/// One epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean training loss over the epoch's rows.
    pub loss: f64,
    /// Training accuracy over the epoch's rows.
    pub accuracy: f64,
    /// Validation loss, when validation data was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Validation accuracy, when validation data was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Training rows per second.
    pub rows_per_s: f64,
}

/// Everything recorded during a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// Steps in order.
    pub steps: Vec<StepRecord>,
    /// Epochs in order.
    pub epochs: Vec<EpochRecord>,
    /// Why the run ended (`completed`, `target reached`, `interrupted`).
    pub stopped: String,
    /// For streamed training data: the most training rows held in memory at once (the shuffle
    /// buffer and the batch being read into it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_resident_rows: Option<usize>,
}

impl History {
    /// Writes the JSON form atomically.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        write_atomically(path, |f| Ok(serde_json::to_writer_pretty(f, self)?))
    }

    /// Writes the CSV form atomically: one row per step, then one row per epoch.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomically(path, |f| {
            writeln!(f, "kind,step,epoch,loss,accuracy,time,val_loss,val_accuracy")?;
            for s in &self.steps {
                writeln!(f, "step,{},{},{},{},{:.6},,", s.step, s.epoch, s.loss, s.accuracy, s.time)?;
            }
            for e in &self.epochs {
                let opt = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
                writeln!(
                    f,
                    "epoch,,{},{},{},,{},{}",
                    e.epoch,
                    e.loss,
                    e.accuracy,
                    opt(e.val_loss),
                    opt(e.val_accuracy)
                )?;
            }
            Ok(())
        })
    }
}
