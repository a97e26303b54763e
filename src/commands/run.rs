//! `distk-gpu run`: checks the flags, then trains one replica on this device
//! ([`crate::training::single_run`]) or, with `--workers` or a distributed trainer, a parameter
//! server and local workers ([`crate::distributed::launch`]); Ctrl-C stops either, keeping the work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

use crate::cli::RunArgs;
use crate::commands::object_paths::{Staging, require_local};
use crate::distributed::launch::{LocalRun, train_local};
use crate::job_spec::JobSpec;
use crate::trainers::TrainerKind;
use crate::training::single_run::{SingleRun, train_single};

/// Runs training; `s3://` model, data and outputs are staged around it.
pub fn run(mut args: RunArgs) -> Result<()> {
    require_local(
        "--checkpoint-dir",
        args.checkpoint_dir.as_deref(),
        "snapshots and the write-ahead log need append, fsync and rename; with --workers, --snapshot-copy s3://... keeps a copy of the snapshots in object storage",
    )?;
    let mut staging = Staging::default();
    // Outputs first: a bucket that cannot be written fails before the inputs are downloaded.
    staging.output(&mut args.out, false)?;
    staging.output_opt(&mut args.history)?;
    staging.output_opt(&mut args.history_csv)?;
    staging.output_opt(&mut args.plot)?;
    staging.input(&mut args.model)?;
    staging.input(&mut args.data)?;
    staging.input_opt(&mut args.validation_data)?;
    let result = run_local_paths(args);
    staging.publish(result)
}

fn run_local_paths(args: RunArgs) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers 0 would train nothing: give at least 1 (1 trains one replica on this device)");
    }
    let kind = args.trainer.trainer.unwrap_or(if args.workers > 1 { TrainerKind::Adag } else { TrainerKind::Single });
    if let Some(p) = &args.plot {
        crate::training::plot::check_path(p)?;
    }
    if kind.uses_server() || args.workers > 1 {
        return run_distributed(args, kind);
    }
    if args.snapshot_copy.is_some() {
        bail!(
            "--snapshot-copy copies a parameter server's snapshots: it needs --workers N or a server trainer (the single trainer's --checkpoint-dir is local)"
        );
    }
    let spec = JobSpec::resolve(&args.job.options(), &args.trainer.options(), kind)?;
    if args.resume && args.checkpoint_dir.is_none() {
        bail!("--resume needs --checkpoint-dir");
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("cannot install the Ctrl-C handler")?;
    }
    train_single(SingleRun {
        model: args.model,
        data: args.data,
        validation: args.validation_data,
        spec,
        out: args.out,
        history: args.history,
        history_csv: args.history_csv,
        plot: args.plot,
        target_loss: args.target_loss,
        target_accuracy: args.target_accuracy,
        checkpoint_dir: args.checkpoint_dir,
        checkpoint_every: args.checkpoint_every,
        resume: args.resume,
        quiet: args.quiet,
        device: args.device.device,
        adapter: args.device.adapter,
        stop,
    })
}

/// Runs a parameter server and `args.workers` local workers.
fn run_distributed(args: RunArgs, kind: TrainerKind) -> Result<()> {
    if kind == TrainerKind::Single {
        bail!(
            "the single trainer trains one replica; use --workers 1, or another --trainer with --workers {}",
            args.workers
        );
    }
    if args.target_loss.is_some() || args.target_accuracy.is_some() {
        bail!(
            "--target-loss and --target-accuracy are for one worker; with --workers every worker trains its --epochs"
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
        history_csv: args.history_csv,
        plot: args.plot,
        checkpoint_dir: args.checkpoint_dir,
        checkpoint_every: args.checkpoint_every,
        wal: !args.no_wal,
        resume: args.resume,
        snapshot_copy: args.snapshot_copy,
        device: args.device.device,
        adapter: args.device.adapter,
        stop,
        verbose: !args.quiet,
        progress: None,
    })
}
