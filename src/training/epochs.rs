//! The training loop that `run` and every worker share: epochs over the rows of a [`RowSource`]
//! (in memory in a seeded order, or streamed through a shuffle buffer), batches of at most
//! `batch` rows, a stop request checked before each batch, a non-finite loss refused, and each
//! epoch's mean loss and accuracy. What happens at each step and at the end of an epoch (a
//! progress bar and checkpoints, or a trainer's exchanges) is the caller's [`EpochHooks`].

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::data::dataset::Dataset;
use crate::training::StepStats;
use crate::training::epoch::epoch_order;

/// What a row source holds: rows per epoch and the labels' form.
#[derive(Clone, Copy, Debug)]
pub struct SourceShape {
    /// Rows per epoch.
    pub rows: usize,
    /// Label values per row.
    pub label_width: usize,
    /// Whether labels are class indices.
    pub sparse: bool,
    /// Whether the rows are streamed (not held in memory).
    pub streamed: bool,
    /// The most rows held at once so far.
    pub peak_resident_rows: usize,
}

/// Where an epoch's rows come from, batch by batch.
pub trait RowSource {
    /// Rows and labels' form.
    fn shape(&self) -> SourceShape;
    /// Starts `epoch`; returns its number of rows.
    fn begin_epoch(&mut self, epoch: usize) -> Result<usize>;
    /// Fills `x` (features) and `y` (labels) with the next at most `batch` rows of the epoch;
    /// returns how many (0 at its end).
    fn next_batch(&mut self, batch: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) -> Result<usize>;
}

/// Rows of an in-memory dataset: a range of it, in a seeded order per epoch.
pub struct MemoryRows {
    data: Arc<Dataset>,
    rows: Range<usize>,
    shuffle: bool,
    seed: u64,
    order: Vec<usize>,
    at: usize,
}

impl MemoryRows {
    /// The rows `rows` of `data`, shuffled every epoch when `shuffle` (seeded by `seed`).
    pub fn new(data: Arc<Dataset>, rows: Range<usize>, shuffle: bool, seed: u64) -> Self {
        MemoryRows { data, rows, shuffle, seed, order: Vec::new(), at: 0 }
    }
}

impl RowSource for MemoryRows {
    fn shape(&self) -> SourceShape {
        SourceShape {
            rows: self.rows.len(),
            label_width: self.data.label_width,
            sparse: self.data.sparse(),
            streamed: false,
            peak_resident_rows: self.data.rows,
        }
    }

    fn begin_epoch(&mut self, epoch: usize) -> Result<usize> {
        let start = self.rows.start;
        self.order =
            epoch_order(self.rows.len(), self.shuffle, self.seed, epoch).into_iter().map(|i| start + i).collect();
        self.at = 0;
        Ok(self.order.len())
    }

    fn next_batch(&mut self, batch: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) -> Result<usize> {
        let end = (self.at + batch).min(self.order.len());
        let idx = &self.order[self.at..end];
        self.data.gather(idx, x, y);
        self.at = end;
        Ok(idx.len())
    }
}

/// How often and in what batches the rows are trained.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Passes over the rows.
    pub epochs: usize,
    /// Rows per step (the last batch of an epoch may be shorter).
    pub batch: usize,
    /// The epoch to start at (a resumed run).
    pub start_epoch: usize,
    /// Batches of the first epoch already trained (a resumed run).
    pub skip_batches: usize,
    /// The number of the first step taken.
    pub first_step: u64,
}

/// Where a step is.
#[derive(Clone, Copy, Debug)]
pub struct StepAt {
    /// The epoch (0-based).
    pub epoch: usize,
    /// The batch within the epoch (0-based).
    pub batch: usize,
    /// The step, counted over the whole run (0-based).
    pub step: u64,
}

/// An epoch so far: the mean loss and accuracy over its rows, and how fast they went.
#[derive(Clone, Copy, Debug, Default)]
pub struct EpochSummary {
    /// Mean loss per row.
    pub loss: f64,
    /// Mean accuracy per row.
    pub accuracy: f64,
    /// Rows trained.
    pub rows: usize,
    /// Rows per second.
    pub rows_per_s: f64,
}

/// How the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every epoch was trained.
    Completed,
    /// A stop was requested before a batch.
    Stopped,
    /// [`EpochHooks::end_epoch`] asked to stop (a target reached).
    EndedEarly,
}

/// A step whose loss was not finite: the training diverged.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the loss became {loss} at step {step} (epoch {}): lower --learning-rate", epoch + 1)]
pub struct NonFiniteLoss {
    /// The loss.
    pub loss: f32,
    /// The step (over the whole run, 0-based).
    pub step: u64,
    /// The epoch (0-based).
    pub epoch: usize,
}

/// What the caller does around the loop's steps.
pub trait EpochHooks {
    /// Whether to stop before the next batch.
    fn stop_requested(&self) -> bool;
    /// An epoch of `batches` batches begins.
    fn start_epoch(&mut self, _epoch: usize, _batches: usize) -> Result<()> {
        Ok(())
    }
    /// Before batch `batch` of the epoch is trained (also before the stop check).
    fn before_batch(&mut self, _batch: usize, _batches: usize) -> Result<()> {
        Ok(())
    }
    /// A batch of a resumed epoch that was trained before.
    fn skipped_batch(&mut self) {}
    /// Trains one step on `rows` rows: features `x`, labels `y`. The buffers are the loop's; a
    /// hook may swap them with its own instead of copying (the loop refills whatever it gets back).
    fn train_batch(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) -> Result<StepStats>;
    /// After the step at `at`: its statistics and the epoch so far.
    fn after_step(&mut self, at: StepAt, stats: &StepStats, epoch_so_far: &EpochSummary) -> Result<()>;
    /// The end of `epoch`; returns whether to go on with the next.
    fn end_epoch(&mut self, epoch: usize, summary: &EpochSummary) -> Result<bool>;
}

/// Trains `schedule` over the rows of `source` with `hooks`; returns how it ended and the number
/// of the next step.
pub fn train_epochs(
    schedule: &Schedule,
    source: &mut dyn RowSource,
    hooks: &mut impl EpochHooks,
) -> Result<(Ended, u64)> {
    let batch = schedule.batch.max(1);
    let mut step = schedule.first_step;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for epoch in schedule.start_epoch..schedule.epochs {
        let n = source.begin_epoch(epoch)?;
        let batches = n.div_ceil(batch);
        hooks.start_epoch(epoch, batches)?;
        let started = Instant::now();
        let (mut loss_sum, mut acc_sum, mut rows_done) = (0.0f64, 0.0f64, 0usize);
        for b in 0..batches {
            if epoch == schedule.start_epoch && b < schedule.skip_batches {
                source.next_batch(batch, &mut x, &mut y)?;
                hooks.skipped_batch();
                continue;
            }
            hooks.before_batch(b, batches)?;
            if hooks.stop_requested() {
                return Ok((Ended::Stopped, step));
            }
            let rows = source.next_batch(batch, &mut x, &mut y)?;
            if rows == 0 {
                anyhow::bail!(
                    "the data ended after {rows_done} of the {n} rows of epoch {} (was it changed while training?)",
                    epoch + 1
                );
            }
            let s = hooks.train_batch(rows, &mut x, &mut y)?;
            if !s.loss.is_finite() {
                return Err(NonFiniteLoss { loss: s.loss, step, epoch }.into());
            }
            loss_sum += s.loss as f64 * rows as f64;
            acc_sum += s.accuracy as f64 * rows as f64;
            rows_done += rows;
            let rows = rows_done as f64;
            let so_far = EpochSummary {
                loss: loss_sum / rows,
                accuracy: acc_sum / rows,
                rows: rows_done,
                rows_per_s: rows / started.elapsed().as_secs_f64().max(1e-9),
            };
            hooks.after_step(StepAt { epoch, batch: b, step }, &s, &so_far)?;
            step += 1;
        }
        let rows = rows_done.max(1) as f64;
        let summary = EpochSummary {
            loss: loss_sum / rows,
            accuracy: acc_sum / rows,
            rows: rows_done,
            rows_per_s: rows_done as f64 / started.elapsed().as_secs_f64().max(1e-9),
        };
        if !hooks.end_epoch(epoch, &summary)? {
            return Ok((Ended::EndedEarly, step));
        }
    }
    Ok((Ended::Completed, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows whose one feature is their index.
    fn rows(range: Range<usize>) -> MemoryRows {
        let n = range.end;
        let data = Dataset {
            features: (0..n).map(|i| i as f32).collect(),
            labels: vec![0.0; n],
            label_width: 1,
            rows: n,
            width: 1,
            sparse_labels: true,
        };
        MemoryRows::new(Arc::new(data), range, false, 0)
    }

    /// Records what the loop asked for; the loss of each step is its first row.
    #[derive(Default)]
    struct Log {
        batches: Vec<Vec<usize>>,
        steps: Vec<u64>,
        skipped: usize,
        epochs: Vec<(usize, f64)>,
        stop_after: Option<usize>,
        stop_epoch: Option<usize>,
    }

    impl EpochHooks for Log {
        fn stop_requested(&self) -> bool {
            self.stop_after.is_some_and(|n| self.batches.len() >= n)
        }
        fn skipped_batch(&mut self) {
            self.skipped += 1;
        }
        fn train_batch(&mut self, rows: usize, x: &mut Vec<f32>, _: &mut Vec<f32>) -> Result<StepStats> {
            self.batches.push(x[..rows].iter().map(|&v| v as usize).collect());
            Ok(StepStats { loss: x[0], accuracy: 1.0 })
        }
        fn after_step(&mut self, at: StepAt, _: &StepStats, _: &EpochSummary) -> Result<()> {
            self.steps.push(at.step);
            Ok(())
        }
        fn end_epoch(&mut self, epoch: usize, s: &EpochSummary) -> Result<bool> {
            self.epochs.push((epoch, s.loss));
            Ok(self.stop_epoch != Some(epoch))
        }
    }

    fn schedule(epochs: usize) -> Schedule {
        Schedule { epochs, batch: 2, start_epoch: 0, skip_batches: 0, first_step: 0 }
    }

    #[test]
    fn batches_cover_the_rows_each_epoch_and_the_means_weigh_rows() {
        let mut log = Log::default();
        assert_eq!(train_epochs(&schedule(2), &mut rows(10..15), &mut log).unwrap(), (Ended::Completed, 6));
        assert_eq!(log.batches[..3], [vec![10, 11], vec![12, 13], vec![14]]);
        assert_eq!(log.steps, vec![0, 1, 2, 3, 4, 5]);
        // (10 * 2 + 12 * 2 + 14) / 5
        assert_eq!(log.epochs, vec![(0, 11.6), (1, 11.6)]);
    }

    #[test]
    fn a_resumed_run_skips_what_it_trained_and_numbers_on() {
        let mut log = Log::default();
        let s = Schedule { start_epoch: 1, skip_batches: 2, first_step: 5, ..schedule(2) };
        assert_eq!(train_epochs(&s, &mut rows(10..15), &mut log).unwrap(), (Ended::Completed, 6));
        assert_eq!((log.batches, log.steps, log.skipped), (vec![vec![14]], vec![5], 2));
    }

    #[test]
    fn stops_before_a_batch_or_after_an_epoch() {
        let mut log = Log { stop_after: Some(2), ..Default::default() };
        assert_eq!(train_epochs(&schedule(3), &mut rows(10..15), &mut log).unwrap(), (Ended::Stopped, 2));
        let mut log = Log { stop_epoch: Some(0), ..Default::default() };
        assert_eq!(train_epochs(&schedule(3), &mut rows(10..15), &mut log).unwrap(), (Ended::EndedEarly, 3));
    }

    #[test]
    fn a_non_finite_loss_is_an_error() {
        struct Nan;
        impl EpochHooks for Nan {
            fn stop_requested(&self) -> bool {
                false
            }
            fn train_batch(&mut self, _: usize, _: &mut Vec<f32>, _: &mut Vec<f32>) -> Result<StepStats> {
                Ok(StepStats { loss: f32::NAN, accuracy: 0.0 })
            }
            fn after_step(&mut self, _: StepAt, _: &StepStats, _: &EpochSummary) -> Result<()> {
                Ok(())
            }
            fn end_epoch(&mut self, _: usize, _: &EpochSummary) -> Result<bool> {
                Ok(true)
            }
        }
        let e = train_epochs(&schedule(1), &mut rows(10..15), &mut Nan).unwrap_err().to_string();
        assert!(e.contains("the loss became NaN at step 0 (epoch 1)"), "{e}");
    }
}
