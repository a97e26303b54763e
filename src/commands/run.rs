//! `distk-gpu run`: the SingleTrainer of dist-keras on our engine. Trains epoch by epoch with a
//! progress bar, validates, checkpoints, stops on a target or Ctrl-C, and writes the trained model
//! (the original ONNX file with its initializers replaced) and the history, all atomically.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use distk_onnx::OnnxModel;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::RunArgs;
use crate::data::FeatureColumns;
use crate::data::dataset::Dataset;
use crate::distributed::launch::{LocalRun, train_local};
use crate::job_spec::JobSpec;
use crate::runtime::Runtime;
use crate::trainers::TrainerKind;
use crate::training::checkpoint::{Checkpoint, CheckpointMeta};
use crate::training::evaluate::Evaluator;
use crate::training::history::{EpochRecord, History, StepRecord};
use crate::training::{TrainSession, epoch_order, model_widths, write_trained_model};

/// Runs training.
pub fn run(args: RunArgs) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers 0 would train nothing: give at least 1 (1 trains one replica on this device)");
    }
    let kind = args.trainer.trainer.unwrap_or(if args.workers > 1 { TrainerKind::Adag } else { TrainerKind::Single });
    if kind.uses_server() || args.workers > 1 {
        return run_distributed(args, kind);
    }
    let spec = JobSpec::resolve(&args.job.options(), &args.trainer.options(), kind)?;
    if let Some(p) = &args.plot
        && !matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "svg" | "PNG" | "SVG"))
    {
        bail!("--plot {}: the file must end in .png or .svg", p.display());
    }
    if args.resume && args.checkpoint_dir.is_none() {
        bail!("--resume needs --checkpoint-dir");
    }
    let model = OnnxModel::load(&args.model)?;
    let (width, classes) = model_widths(&model)?;
    let cols = FeatureColumns::parse(&spec.features_col);
    let train = Dataset::load(&args.data, &cols, &spec.label_col, width, classes)?;
    let val = match &args.validation_data {
        Some(p) => Some(Dataset::load(p, &cols, &spec.label_col, width, classes)?),
        None => None,
    };
    let mut runtime = Runtime::open(args.device.device, args.device.adapter)?;
    let batch = spec.batch_size.min(train.rows);
    let loss = spec.loss.clone().unwrap_or_else(|| train.default_loss(classes).to_string());
    let config = spec.session_config(&loss, train.sparse())?;
    let mut session = TrainSession::with_config(&model, &mut runtime, batch, &config)?;
    if session.target_width() != train.label_width {
        bail!(
            "loss `{loss}` takes {} target value(s) per row, the label column `{}` has {}: choose a loss that fits the labels",
            session.target_width(),
            spec.label_col,
            train.label_width
        );
    }
    let mut evaluator = match &val {
        Some(_) => Some(Evaluator::with_import(&model, &mut runtime, batch, &loss, train.sparse(), &config.import)?),
        None => None,
    };
    let (mut start_epoch, mut skip_batches, mut global_step) = (0usize, 0usize, 0u64);
    if args.resume {
        let dir = args.checkpoint_dir.as_ref().expect("checked above");
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
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("cannot install the Ctrl-C handler")?;
    }
    eprintln!("training on {} ({} rows, batch {batch}, {} optimizer)", runtime.describe(), train.rows, spec.optimizer);
    let mut history = History { stopped: "completed".into(), ..Default::default() };
    let started = Instant::now();
    let steps_per_epoch = train.rows.div_ceil(batch);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    'epochs: for epoch in start_epoch..spec.epochs {
        let order = epoch_order(train.rows, spec.shuffle, spec.seed, epoch);
        let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(steps_per_epoch as u64) };
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, spec.epochs));
        let epoch_start = Instant::now();
        let (mut loss_sum, mut acc_sum, mut rows_done) = (0.0f64, 0.0f64, 0usize);
        for (b, chunk) in order.chunks(batch).enumerate() {
            if epoch == start_epoch && b < skip_batches {
                bar.inc(1);
                continue;
            }
            if stop.load(Ordering::SeqCst) {
                bar.abandon();
                history.stopped = "interrupted".into();
                break 'epochs;
            }
            train.gather(chunk, &mut x, &mut y);
            let s = session.step(chunk.len(), &x, &y)?;
            if !s.loss.is_finite() {
                bar.abandon();
                bail!("the loss became {} at step {global_step} (epoch {}): lower --learning-rate", s.loss, epoch + 1);
            }
            loss_sum += s.loss as f64 * chunk.len() as f64;
            acc_sum += s.accuracy as f64 * chunk.len() as f64;
            rows_done += chunk.len();
            history.steps.push(StepRecord {
                step: global_step,
                epoch,
                loss: s.loss,
                accuracy: s.accuracy,
                time: started.elapsed().as_secs_f64(),
            });
            global_step += 1;
            let rate = rows_done as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.4} acc {:.4} {:.0} rows/s",
                loss_sum / rows_done as f64,
                acc_sum / rows_done as f64,
                rate
            ));
            bar.inc(1);
            if let Some(dir) = &args.checkpoint_dir
                && global_step % args.checkpoint_every.max(1) == 0
            {
                save_checkpoint(&mut session, dir, epoch, b + 1, global_step, spec.seed)?;
            }
        }
        bar.finish();
        let rows = rows_done.max(1) as f64;
        let mut rec = EpochRecord {
            epoch,
            loss: loss_sum / rows,
            accuracy: acc_sum / rows,
            val_loss: None,
            val_accuracy: None,
            rows_per_s: rows_done as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9),
        };
        if let (Some(ev), Some(v)) = (evaluator.as_mut(), val.as_ref()) {
            ev.set_params(&session.params()?)?;
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
        history.epochs.push(rec);
        if let Some(dir) = &args.checkpoint_dir {
            save_checkpoint(&mut session, dir, epoch + 1, 0, global_step, spec.seed)?;
        }
        if args.target_loss.is_some_and(|t| watch_loss <= t) || args.target_accuracy.is_some_and(|t| watch_acc >= t) {
            history.stopped = "target reached".into();
            eprintln!("target reached after epoch {}", epoch + 1);
            break;
        }
    }
    if global_step == 0 && !args.resume {
        bail!("no training step ran (interrupted before the first step); nothing written");
    }
    write_trained_model(&model, &mut session, &args.out, spec.add_missing_biases)?;
    eprintln!("wrote the trained model to {}", args.out.display());
    if let Some(p) = &args.history {
        history.write_json(p)?;
    }
    if let Some(p) = &args.history_csv {
        history.write_csv(p)?;
    }
    if let Some(p) = &args.plot {
        crate::training::plot::plot(&history, p)?;
    }
    if history.stopped == "interrupted" {
        bail!("interrupted: the model and history so far were written");
    }
    Ok(())
}

/// Runs a parameter server and `args.workers` local workers.
fn run_distributed(args: RunArgs, kind: TrainerKind) -> Result<()> {
    if kind == TrainerKind::Single {
        bail!(
            "the single trainer trains one replica; use --workers 1, or another --trainer with --workers {}",
            args.workers
        );
    }
    if args.history_csv.is_some() || args.plot.is_some() || args.target_loss.is_some() || args.target_accuracy.is_some()
    {
        bail!(
            "--history-csv, --plot, --target-loss and --target-accuracy are for one worker; with --workers use --history (JSON)"
        );
    }
    let spec = JobSpec::resolve(&args.job.options(), &args.trainer.options(), kind)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("cannot install the Ctrl-C handler")?;
    }
    train_local(LocalRun {
        model: args.model,
        data: args.data,
        validation: args.validation_data,
        spec,
        workers: args.workers,
        out: args.out,
        history: args.history,
        checkpoint_dir: args.checkpoint_dir,
        checkpoint_every: args.checkpoint_every,
        wal: !args.no_wal,
        resume: args.resume,
        device: args.device.device,
        adapter: args.device.adapter,
        stop,
        verbose: !args.quiet,
        progress: None,
    })
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
