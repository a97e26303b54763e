//! A distributed run's history as CSV (every worker's steps and the centre's validations, one row
//! each) and as a plot (per epoch: the workers' mean training loss and accuracy, the centre's
//! validation), beside the JSON report.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::data::atomic::write_atomically;
use crate::distributed::ps::PsOutcome;
use crate::training::history::{EpochRecord, History, StepRecord};

/// Writes the CSV: `kind` is `step` (a worker's step) or `centre` (the centre after an epoch).
pub fn write_csv(outcome: &PsOutcome, path: &Path) -> Result<()> {
    write_atomically(path, |f| {
        writeln!(f, "kind,worker,step,epoch,loss,accuracy,clock,staleness,net_wait_s,time,val_loss,val_accuracy")?;
        for w in &outcome.workers {
            let Some(h) = &w.history else { continue };
            for s in &h.steps {
                writeln!(
                    f,
                    "step,{},{},{},{},{},{},{},{:.6},{:.6},,",
                    w.worker, s.step, s.epoch, s.loss, s.accuracy, s.clock, s.staleness, s.net_wait_s, s.time
                )?;
            }
        }
        for e in &outcome.epochs {
            writeln!(f, "centre,,,{},,,{},,,{:.6},{},{}", e.epoch, e.clock, e.time, e.eval.loss, e.eval.accuracy)?;
        }
        Ok(())
    })
}

/// The run as a one-replica [`History`]: every worker's steps in time order, and per epoch the
/// workers' mean step loss and accuracy with the centre's validation.
pub fn as_history(outcome: &PsOutcome) -> History {
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut rows_per_epoch = 0usize;
    for w in &outcome.workers {
        let Some(h) = &w.history else { continue };
        rows_per_epoch += h.rows;
        steps.extend(h.steps.iter().map(|s| StepRecord {
            step: 0,
            epoch: s.epoch,
            loss: s.loss,
            accuracy: s.accuracy,
            time: s.time,
        }));
    }
    steps.sort_by(|a, b| a.time.total_cmp(&b.time));
    for (i, s) in steps.iter_mut().enumerate() {
        s.step = i as u64;
    }
    let last_epoch = steps.iter().map(|s| s.epoch).max();
    let mut epochs = Vec::new();
    let mut previous_end = 0.0f64;
    for e in 0..last_epoch.map_or(0, |x| x + 1) {
        let in_epoch: Vec<&StepRecord> = steps.iter().filter(|s| s.epoch == e).collect();
        if in_epoch.is_empty() {
            continue;
        }
        let n = in_epoch.len() as f64;
        let end = in_epoch.iter().map(|s| s.time).fold(0.0, f64::max);
        let centre = outcome.epochs.iter().find(|c| c.epoch == e as u64);
        epochs.push(EpochRecord {
            epoch: e,
            loss: in_epoch.iter().map(|s| s.loss as f64).sum::<f64>() / n,
            accuracy: in_epoch.iter().map(|s| s.accuracy as f64).sum::<f64>() / n,
            val_loss: centre.map(|c| c.eval.loss),
            val_accuracy: centre.map(|c| c.eval.accuracy),
            rows_per_s: if end > previous_end { rows_per_epoch as f64 / (end - previous_end) } else { 0.0 },
        });
        previous_end = end;
    }
    History { steps, epochs, stopped: outcome.stopped.clone(), peak_resident_rows: None }
}
