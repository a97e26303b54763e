//! The single trainer's run (dist-keras' SingleTrainer on our engine): one replica on one device,
//! epoch by epoch through the shared loop ([`crate::training::epochs`]) with a progress bar;
//! validates, checkpoints, stops on a target or a stop request, and writes the trained model (the
//! original ONNX file with its initializers replaced) and the history, all atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use distk_onnx::OnnxModel;
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::dataset::Dataset;
use crate::data::dataset::default_loss;
use crate::data::stream::{StreamOptions, StreamedRows, too_large_for_memory};
use crate::job_spec::JobSpec;
use crate::runtime::{DeviceChoice, Runtime};
use crate::training::checkpoint::{Checkpoint, CheckpointMeta};
use crate::training::epochs::{Ended, EpochHooks, EpochSummary, MemoryRows, RowSource, Schedule, StepAt, train_epochs};
use crate::training::evaluate::Evaluator;
use crate::training::history::{EpochRecord, History, StepRecord};
use crate::training::{StepStats, TrainSession, model_widths, write_trained_model};

/// A run of the single trainer.
pub struct SingleRun {
    /// The ONNX model.
    pub model: PathBuf,
    /// Training rows.
    pub data: PathBuf,
    /// Validation rows, evaluated after every epoch.
    pub validation: Option<PathBuf>,
    /// The job.
    pub spec: JobSpec,
    /// Where the trained model goes.
    pub out: PathBuf,
    /// Where the history goes as JSON.
    pub history: Option<PathBuf>,
    /// Where the history goes as CSV.
    pub history_csv: Option<PathBuf>,
    /// Where loss and accuracy are drawn (.png or .svg).
    pub plot: Option<PathBuf>,
    /// Stop after the first epoch whose (validation) loss is at most this.
    pub target_loss: Option<f64>,
    /// Stop after the first epoch whose (validation) accuracy is at least this.
    pub target_accuracy: Option<f64>,
    /// Where the latest training state is kept.
    pub checkpoint_dir: Option<PathBuf>,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Continue from the checkpoint.
    pub resume: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Where the model runs.
    pub device: DeviceChoice,
    /// Adapter index.
    pub adapter: Option<usize>,
    /// Set to stop (the model and history so far are written).
    pub stop: Arc<AtomicBool>,
}

/// Trains `run` to the end and writes the model and history.
pub fn train_single(mut run: SingleRun) -> Result<()> {
    // Standard steps are fitted on the training rows and scale the validation rows alike.
    run.spec.fit_transforms(&run.data)?;
    let spec = &run.spec;
    let model = OnnxModel::load(&run.model)?;
    crate::training::model_io::check_fixed_batch(&model, run.spec.batch_size)?;
    let (width, classes) = model_widths(&model)?;
    let cols = spec.data_columns()?;
    // Data whose decoded features exceed --in-memory-max-bytes is streamed through the shuffle
    // buffer; smaller data is held in memory.
    let mut source: Box<dyn RowSource> = if too_large_for_memory(&run.data, &cols, width, spec.in_memory_max_bytes)? {
        let options = StreamOptions { shuffle_buffer: spec.shuffle_buffer, shuffle: spec.shuffle, seed: spec.seed };
        Box::new(StreamedRows::open(&run.data, &cols, width, classes, options)?)
    } else {
        let train = Arc::new(Dataset::load(&run.data, &cols, width, classes)?);
        Box::new(MemoryRows::new(train.clone(), 0..train.rows, spec.shuffle, spec.seed))
    };
    let shape = source.shape();
    let val = match &run.validation {
        Some(p) => Some(Dataset::load(p, &cols, width, classes)?),
        None => None,
    };
    let mut runtime = Runtime::open(run.device, run.adapter)?;
    // A fixed batch is kept whatever the rows (a last partial batch is masked).
    let batch = crate::training::model_io::fixed_batch(&model)?.unwrap_or(spec.batch_size.min(shape.rows));
    let loss = spec.loss.clone().unwrap_or_else(|| default_loss(shape.label_width, classes).to_string());
    let config = spec.session_config(&loss, shape.sparse)?;
    let mut session = TrainSession::with_config(&model, &mut runtime, batch, &config)?;
    if session.target_width() != shape.label_width {
        bail!(
            "loss `{loss}` takes {} target value(s) per row, the label column `{}` has {}: choose a loss that fits the labels",
            session.target_width(),
            spec.label_col,
            shape.label_width
        );
    }
    let mut evaluator = match &val {
        Some(_) => Some(Evaluator::with_import(
            &model,
            &mut runtime,
            batch,
            &loss,
            shape.sparse,
            &config.import,
            config.from_logits,
        )?),
        None => None,
    };
    let (mut start_epoch, mut skip_batches, mut global_step) = (0usize, 0usize, 0u64);
    if run.resume {
        let dir = run.checkpoint_dir.as_ref().context("--resume needs --checkpoint-dir")?;
        let ck = Checkpoint::load(dir)?;
        if ck.meta.param_len != session.layout().total_len() {
            bail!(
                "the checkpoint in `{}` belongs to another model ({} parameters, this one has {})",
                dir.display(),
                ck.meta.param_len,
                session.layout().total_len()
            );
        }
        session.set_params(&ck.params)?;
        session
            .set_optimizer_state(&distk_engine::OptimizerState { step: ck.meta.optimizer_step, slots: ck.state })
            .context("the checkpoint was written with another optimizer")?;
        (start_epoch, skip_batches, global_step) = (ck.meta.epoch, ck.meta.batch_in_epoch, ck.meta.global_step);
        eprintln!("resuming at epoch {} batch {} (step {global_step})", start_epoch + 1, skip_batches);
    }
    eprintln!(
        "training on {} ({} rows{}, batch {batch}, {} optimizer)",
        runtime.describe(),
        shape.rows,
        if shape.streamed {
            format!(" streamed through a shuffle buffer of {} rows", spec.shuffle_buffer)
        } else {
            String::new()
        },
        spec.optimizer
    );
    if let Some(note) = crate::training::output_kind_note(&model, &loss, spec.from_logits) {
        eprintln!("{note}");
    }
    let schedule = Schedule { epochs: spec.epochs, batch, start_epoch, skip_batches, first_step: global_step };
    let mut hooks = SingleHooks {
        session: &mut session,
        validation: evaluator.as_mut().zip(val.as_ref()),
        stop: &run.stop,
        history: History { stopped: "completed".into(), ..Default::default() },
        started: Instant::now(),
        bar: ProgressBar::hidden(),
        quiet: run.quiet,
        epochs: spec.epochs,
        seed: spec.seed,
        next_step: global_step,
        checkpoint: run.checkpoint_dir.as_deref().map(|d| (d, run.checkpoint_every.max(1))),
        targets: (run.target_loss, run.target_accuracy),
    };
    let outcome = train_epochs(&schedule, source.as_mut(), &mut hooks);
    let mut history = std::mem::take(&mut hooks.history);
    let global_step = match outcome {
        Ok((ended, next_step)) => {
            if ended == Ended::Stopped {
                hooks.bar.abandon();
                history.stopped = "interrupted".into();
            }
            next_step
        }
        Err(e) => {
            hooks.bar.abandon();
            return Err(e);
        }
    };
    if global_step == 0 && !run.resume {
        bail!("no training step ran (interrupted before the first step); nothing written");
    }
    let end = source.shape();
    if end.streamed {
        history.peak_resident_rows = Some(end.peak_resident_rows);
        eprintln!(
            "streamed {} rows per epoch; at most {} rows were held at once (shuffle buffer {})",
            end.rows, end.peak_resident_rows, spec.shuffle_buffer
        );
    }
    write_trained_model(&model, &mut session, &run.out, spec.add_missing_biases)?;
    eprintln!("wrote the trained model to {}", run.out.display());
    if let Some(p) = &run.history {
        history.write_json(p)?;
    }
    if let Some(p) = &run.history_csv {
        history.write_csv(p)?;
    }
    if let Some(p) = &run.plot {
        crate::training::plot::plot(&history, p)?;
    }
    if history.stopped == "interrupted" {
        bail!("interrupted: the model and history so far were written");
    }
    Ok(())
}

/// The single trainer around the shared loop: the replica's steps, the progress bar, the history,
/// validation after each epoch, checkpoints and the targets.
struct SingleHooks<'a> {
    session: &'a mut TrainSession,
    validation: Option<(&'a mut Evaluator, &'a Dataset)>,
    stop: &'a AtomicBool,
    history: History,
    started: Instant,
    bar: ProgressBar,
    quiet: bool,
    epochs: usize,
    seed: u64,
    /// The number of the next step.
    next_step: u64,
    /// The checkpoint directory and the steps between checkpoints.
    checkpoint: Option<(&'a Path, u64)>,
    /// `--target-loss`, `--target-accuracy`.
    targets: (Option<f64>, Option<f64>),
}

impl EpochHooks for SingleHooks<'_> {
    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn start_epoch(&mut self, epoch: usize, batches: usize) -> Result<()> {
        self.bar = if self.quiet { ProgressBar::hidden() } else { ProgressBar::new(batches as u64) };
        self.bar.set_style(
            ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.bar.set_prefix(format!("{}/{}", epoch + 1, self.epochs));
        Ok(())
    }

    fn skipped_batch(&mut self) {
        self.bar.inc(1);
    }

    fn train_batch(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) -> Result<StepStats> {
        self.session.step(rows, x, y)
    }

    fn after_step(&mut self, at: StepAt, s: &StepStats, so_far: &EpochSummary) -> Result<()> {
        self.history.steps.push(StepRecord {
            step: at.step,
            epoch: at.epoch,
            loss: s.loss,
            accuracy: s.accuracy,
            time: self.started.elapsed().as_secs_f64(),
        });
        self.bar
            .set_message(format!("loss {:.4} acc {:.4} {:.0} rows/s", so_far.loss, so_far.accuracy, so_far.rows_per_s));
        self.bar.inc(1);
        self.next_step = at.step + 1;
        if let Some((dir, every)) = self.checkpoint
            && self.next_step.is_multiple_of(every)
        {
            save_checkpoint(self.session, dir, at.epoch, at.batch + 1, self.next_step, self.seed)?;
        }
        Ok(())
    }

    fn end_epoch(&mut self, epoch: usize, summary: &EpochSummary) -> Result<bool> {
        self.bar.finish();
        let mut rec = EpochRecord {
            epoch,
            loss: summary.loss,
            accuracy: summary.accuracy,
            val_loss: None,
            val_accuracy: None,
            rows_per_s: summary.rows_per_s,
        };
        if let Some((ev, v)) = self.validation.as_mut() {
            ev.set_params(&self.session.params()?)?;
            let r = ev.evaluate(v)?;
            rec.val_loss = Some(r.loss);
            rec.val_accuracy = Some(r.accuracy);
        }
        eprintln!(
            "epoch {}: loss {:.4} accuracy {:.4}{} ({:.0} rows/s)",
            epoch + 1,
            rec.loss,
            rec.accuracy,
            rec.val_loss.map_or(String::new(), |l| format!(
                " val_loss {l:.4} val_accuracy {:.4}",
                rec.val_accuracy.unwrap_or(0.0)
            )),
            rec.rows_per_s
        );
        let (watch_loss, watch_acc) = (rec.val_loss.unwrap_or(rec.loss), rec.val_accuracy.unwrap_or(rec.accuracy));
        self.history.epochs.push(rec);
        if let Some((dir, _)) = self.checkpoint {
            save_checkpoint(self.session, dir, epoch + 1, 0, self.next_step, self.seed)?;
        }
        let (target_loss, target_accuracy) = self.targets;
        if target_loss.is_some_and(|t| watch_loss <= t) || target_accuracy.is_some_and(|t| watch_acc >= t) {
            self.history.stopped = "target reached".into();
            eprintln!("target reached after epoch {}", epoch + 1);
            return Ok(false);
        }
        Ok(true)
    }
}

fn save_checkpoint(
    session: &mut TrainSession,
    dir: &std::path::Path,
    epoch: usize,
    batch_in_epoch: usize,
    global_step: u64,
    seed: u64,
) -> Result<()> {
    let params = session.params()?;
    let opt = session.optimizer_state()?;
    let meta = CheckpointMeta {
        epoch,
        batch_in_epoch,
        global_step,
        optimizer_step: opt.step,
        param_len: params.len(),
        state_len: opt.slots.len(),
        seed,
    };
    Checkpoint { meta, params, state: opt.slots }.save(dir)
}
