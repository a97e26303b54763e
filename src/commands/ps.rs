//! `distk-gpu ps`: the parameter server of a multi-host run. Prints where it listens and its
//! certificate's SHA-256 (what workers pin), sends each worker the model and hyper-parameters, and
//! writes the trained centre and the run's history when every worker is done or lost.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use distk_net::auth::Secrets;
use distk_net::tls::{Identity, hex};
use distk_onnx::OnnxModel;

use crate::cli::PsArgs;
use crate::commands::object_paths::{Staging, require_local};
use crate::data::dataset::Dataset;
use crate::distributed::ps::{PsSetup, persistent_identity, run_ps};
use crate::distributed::report::{HistoryOutputs, finish_run};
use crate::job_spec::JobSpec;
use crate::trainers::TrainerKind;
use crate::training::model_widths;

/// Runs the parameter server.
pub fn run(mut args: PsArgs) -> Result<()> {
    require_local(
        "--checkpoint-dir",
        args.checkpoint_dir.as_deref(),
        "snapshots and the write-ahead log need append, fsync and rename; with --workers, --snapshot-copy s3://... keeps a copy of the snapshots in object storage",
    )?;
    require_local("--secrets", Some(&args.secrets), "secrets stay on this machine")?;
    let mut staging = Staging::default();
    staging.output(&mut args.out, false)?;
    staging.output_opt(&mut args.history)?;
    staging.output_opt(&mut args.history_csv)?;
    staging.output_opt(&mut args.plot)?;
    staging.input(&mut args.model)?;
    staging.input_opt(&mut args.validation_data)?;
    let result = serve(args);
    staging.publish(result)
}

fn serve(args: PsArgs) -> Result<()> {
    let kind = args.trainer.trainer.unwrap_or(TrainerKind::Adag);
    if kind == TrainerKind::Single {
        bail!("the single trainer has no parameter server; use `distk-gpu run`");
    }
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    if args.resume && args.checkpoint_dir.is_none() {
        bail!("--resume needs --checkpoint-dir");
    }
    let spec = JobSpec::resolve(&args.job.options(), &args.trainer.options(), kind)?;
    if let Some(p) = &args.plot {
        crate::training::plot::check_path(p)?;
    }
    let model = OnnxModel::load(&args.model)?;
    crate::training::model_io::check_fixed_batch(&model, spec.batch_size)?;
    let (width, classes) = model_widths(&model)?;
    let cols = spec.data_columns()?;
    if !cols.transforms.unfitted().is_empty() {
        bail!(
            "a standard step needs mean= and std= on a parameter server (it has no training rows to fit them on); `distk-gpu transform --data TRAIN --step ...` prints them"
        );
    }
    let validation = match &args.validation_data {
        Some(p) => Some(Dataset::load(p, &cols, width, classes)?),
        None => None,
    };
    let secrets = Secrets::load(&args.secrets)?;
    if secrets.0.is_empty() {
        bail!("the secrets file {} lists no secret: add one with `distk-gpu secret`", args.secrets.display());
    }
    let identity = match (&args.tls_cert, &args.tls_key, &args.checkpoint_dir) {
        (Some(c), Some(k), _) => Identity::from_pem_files(c, k)?,
        (_, _, Some(dir)) => persistent_identity(dir)?,
        _ => Identity::self_signed(&[])?,
    };
    let net = crate::distributed::net_runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("cannot install the Ctrl-C handler")?;
    }
    let setup = PsSetup {
        listen: args.listen,
        identity,
        secrets,
        workers: args.workers,
        spec: spec.clone(),
        model: model.clone(),
        validation: validation.clone(),
        device: args.device.device,
        adapter: args.device.adapter,
        checkpoint_dir: args.checkpoint_dir.clone(),
        checkpoint_every: args.checkpoint_every,
        wal: !args.no_wal,
        resume: args.resume,
        snapshot_copy: args.snapshot_copy.clone(),
        join_timeout: Duration::from_secs(args.join_timeout),
        round_timeout: Duration::from_secs(24 * 3600),
        stop,
        verbose: true,
        progress: None,
    };
    let outcome = run_ps(setup, net.handle(), |s| {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on {}", s.addr);
        let _ = writeln!(out, "certificate sha256 {}", hex(&s.sha256));
        let _ = out.flush();
    })?;
    let outputs =
        HistoryOutputs { json: args.history.as_deref(), csv: args.history_csv.as_deref(), plot: args.plot.as_deref() };
    finish_run(&outcome, &spec, &model, &args.out, outputs, validation.as_ref(), args.device.device)
}
