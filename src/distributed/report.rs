//! The end of a distributed run: the trained centre (or, for an ensemble, one model per worker) as
//! ONNX, the run's history as JSON, and an exit status that says whether every worker finished.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use distk_onnx::OnnxModel;
use serde::Serialize;

use crate::data::atomic::write_atomically;
use crate::data::dataset::Dataset;
use crate::distributed::PartialRun;
use crate::distributed::ps::{CentreEpoch, PsOutcome, RecoveryRecord, WorkerOutcome};
use crate::job_spec::JobSpec;
use crate::predictor::Predictor;
use crate::runtime::{DeviceChoice, Runtime};
use crate::trainers::{TrainerParams, WorkerSide};
use crate::training::evaluate::Evaluation;
use crate::training::trained_model_bytes;

/// Accuracy of an ensemble's averaged prediction.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct EnsembleEvaluation {
    /// Models averaged.
    pub members: usize,
    /// Accuracy of the mean of their outputs.
    pub accuracy: f64,
    /// Rows evaluated.
    pub rows: usize,
}

/// The history of a distributed run, as written by `--history`.
#[derive(Serialize)]
pub struct RunReport<'a> {
    /// The trainer and its hyper-parameters.
    pub trainer: &'a TrainerParams,
    /// Workers of the run.
    pub workers: usize,
    /// Updates of the centre.
    pub clock: u64,
    /// Seconds of the run.
    pub seconds: f64,
    /// `completed` or `interrupted`.
    pub stopped: &'a str,
    /// Workers that did not finish, named.
    pub failures: Vec<String>,
    /// Every recovery of the parameter server from its checkpoint directory (after a crash).
    pub recoveries: &'a [RecoveryRecord],
    /// The centre after each epoch of every worker.
    pub epochs: &'a [CentreEpoch],
    /// The final centre on the validation rows.
    pub final_validation: Option<Evaluation>,
    /// Ensembles: the averaged prediction on the validation rows.
    pub ensemble_validation: Option<EnsembleEvaluation>,
    /// Per worker: status, commits applied, and its own per-step history.
    pub worker_reports: &'a [WorkerOutcome],
}

/// `out` with `-i` before its extension.
pub fn member_path(out: &Path, i: u32) -> PathBuf {
    let stem = out.file_stem().map_or("trained".into(), |s| s.to_string_lossy().into_owned());
    let ext = out.extension().map_or("onnx".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}-{i}.{ext}"))
}

/// Accuracy of the mean output of `models` on `data`.
pub fn evaluate_ensemble(models: &[Vec<u8>], data: &Dataset, device: DeviceChoice) -> Result<EnsembleEvaluation> {
    let mut sum: Vec<f32> = Vec::new();
    let mut width = 0;
    for (i, bytes) in models.iter().enumerate() {
        let m = OnnxModel::from_bytes(bytes.clone(), &format!("<ensemble member {i}>"))?;
        let mut p = Predictor::new(m, Runtime::open(device, None)?)?;
        width = p.output_width;
        sum.resize(data.rows * width, 0.0);
        for start in (0..data.rows).step_by(256) {
            let n = 256.min(data.rows - start);
            let out = p.predict(n, &data.features[start * data.width..(start + n) * data.width])?;
            for (s, o) in sum[start * width..(start + n) * width].iter_mut().zip(out) {
                *s += o;
            }
        }
    }
    let members = models.len().max(1) as f32;
    let argmax = |v: &[f32]| v.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0;
    let mut right = 0usize;
    for r in 0..data.rows {
        let out = &sum[r * width..(r + 1) * width];
        let lw = data.label_width;
        let label = &data.labels[r * lw..(r + 1) * lw];
        let ok = if width == 1 {
            (out[0] / members > 0.5) == (label[0] > 0.5)
        } else if lw == 1 {
            argmax(out) == label[0] as usize
        } else {
            argmax(out) == argmax(label)
        };
        right += usize::from(ok);
    }
    Ok(EnsembleEvaluation { members: models.len(), accuracy: right as f64 / data.rows.max(1) as f64, rows: data.rows })
}

/// Where a run's history goes: JSON report, CSV, plot.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryOutputs<'a> {
    /// The JSON report (`--history`).
    pub json: Option<&'a Path>,
    /// The CSV of every step and centre validation (`--history-csv`).
    pub csv: Option<&'a Path>,
    /// The per-epoch plot (`--plot`, .png or .svg).
    pub plot: Option<&'a Path>,
}

/// Writes the model(s) and the history of a finished run; an error when nothing was trained, a
/// [`PartialRun`] when some worker did not finish.
pub fn finish_run(
    outcome: &PsOutcome,
    spec: &JobSpec,
    model: &OnnxModel,
    out: &Path,
    outputs: HistoryOutputs,
    validation: Option<&Dataset>,
    device: DeviceChoice,
) -> Result<()> {
    let kind = spec.trainer.kind;
    let mut ensemble_validation = None;
    if kind.worker() == WorkerSide::Independent {
        if outcome.finals.is_empty() {
            bail!("no ensemble member finished: nothing written ({})", outcome.failures().join("; "));
        }
        let mut models = Vec::new();
        for (id, weights) in &outcome.finals {
            let bytes = trained_model_bytes(model, &outcome.layout, weights, spec.add_missing_biases)?;
            let path = member_path(out, *id);
            write_atomically(&path, |f| Ok(std::io::Write::write_all(f, &bytes)?))?;
            eprintln!("wrote ensemble member {id} to {}", path.display());
            models.push(bytes);
        }
        if let Some(v) = validation {
            let e = evaluate_ensemble(&models, v, device)?;
            eprintln!("ensemble of {}: averaged prediction accuracy {:.4} on {} rows", e.members, e.accuracy, e.rows);
            ensemble_validation = Some(e);
        }
    } else {
        if outcome.clock == 0 {
            bail!(
                "no update reached the parameter server, so the model is untrained: nothing written{}",
                if outcome.failures().is_empty() {
                    String::new()
                } else {
                    format!(" ({})", outcome.failures().join("; "))
                }
            );
        }
        let bytes = trained_model_bytes(model, &outcome.layout, &outcome.centre, spec.add_missing_biases)?;
        write_atomically(out, |f| Ok(std::io::Write::write_all(f, &bytes)?))?;
        eprintln!(
            "wrote the trained centre ({} updates{}) to {}",
            outcome.clock,
            outcome
                .final_validation
                .map_or(String::new(), |e| format!(", val_loss {:.4} val_accuracy {:.4}", e.loss, e.accuracy)),
            out.display()
        );
    }
    let failures = outcome.failures();
    if let Some(p) = outputs.csv {
        crate::distributed::history_export::write_csv(outcome, p)?;
    }
    if let Some(p) = outputs.plot {
        crate::training::plot::plot(&crate::distributed::history_export::as_history(outcome), p)?;
    }
    if let Some(p) = outputs.json {
        let report = RunReport {
            trainer: &spec.trainer,
            workers: outcome.workers.len(),
            clock: outcome.clock,
            seconds: outcome.seconds,
            stopped: &outcome.stopped,
            failures: failures.clone(),
            recoveries: &outcome.recoveries,
            epochs: &outcome.epochs,
            final_validation: outcome.final_validation,
            ensemble_validation,
            worker_reports: &outcome.workers,
        };
        write_atomically(p, |f| Ok(serde_json::to_writer_pretty(f, &report)?))?;
    }
    if outcome.stopped == "interrupted" {
        return Err(PartialRun("interrupted: the model and history so far were written".into()).into());
    }
    if !failures.is_empty() {
        return Err(PartialRun(format!(
            "the run completed without {}: the model was trained by the others and written",
            failures.join("; ")
        ))
        .into());
    }
    Ok(())
}
