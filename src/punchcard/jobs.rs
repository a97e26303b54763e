//! Job records: one folder per job in the state directory (`jobs/<id>/job.json` beside the job's
//! model, uploaded data, trained model and history), written atomically, read back at start. A job
//! that was queued or running when the server stopped is resumed by the restarted server from its
//! checkpoint folder (`Api::resume_interrupted`), or marked failed when it has none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::atomic::{private_dir, write_private};
use crate::distributed::ps::RunProgress;
use crate::job_spec::{TrainOptions, TrainerOptions};

/// What a client asks to run (the `spec` part of `POST /api/jobs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// A name for the job (letters, digits, `-`, `_`, `.`; at most 64).
    pub name: String,
    /// Local workers (at most the server's `--max-workers`).
    pub workers: u32,
    /// The trainer and its hyper-parameters.
    pub trainer: TrainerOptions,
    /// What and how to train.
    pub job: TrainOptions,
    /// Training rows under the server's data root (when no data is uploaded).
    pub data: Option<String>,
    /// Validation rows under the server's data root.
    pub validation_data: Option<String>,
}

/// Where a job is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Accepted, not started.
    Queued,
    /// Training.
    Running,
    /// Finished; the model is fetchable.
    Succeeded,
    /// Ended with an error (see `error`).
    Failed,
    /// Cancelled by its owner; what it had trained is fetchable.
    Cancelled,
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// A job as stored and as returned by the API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The identity that submitted it (its owner).
    pub owner: String,
    /// A fingerprint of the secret that submitted it (never the secret).
    pub secret_id: String,
    /// Where it is.
    pub state: JobState,
    /// Why it failed, or what went wrong in a run that still produced a model.
    pub error: Option<String>,
    /// How far it got.
    pub progress: RunProgress,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub started: Option<u64>,
    /// Unix seconds.
    pub finished: Option<u64>,
    /// Whether a trained model is there.
    pub has_model: bool,
    /// How often a restarted server resumed it from its checkpoint.
    #[serde(default)]
    pub resumes: u32,
    /// Its owner asked to cancel it (a server restarted before it ended does not resume it).
    #[serde(default)]
    pub cancel_requested: bool,
    /// What was asked.
    pub request: JobRequest,
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The job records on disk.
pub struct JobStore {
    dir: PathBuf,
    /// Every job by id.
    pub jobs: BTreeMap<String, JobRecord>,
}

impl JobStore {
    /// Opens (or creates) the store in `state_dir/jobs`. Jobs a stopped server left queued or
    /// running keep that state until the server takes them up (`Api::resume_interrupted`).
    pub fn open(state_dir: &Path) -> Result<Self> {
        let dir = state_dir.join("jobs");
        private_dir(&dir)?;
        let mut store = JobStore { dir, jobs: BTreeMap::new() };
        for entry in std::fs::read_dir(&store.dir)? {
            let path = entry?.path().join("job.json");
            let Ok(bytes) = std::fs::read(&path) else { continue };
            match serde_json::from_slice::<JobRecord>(&bytes) {
                Ok(r) => {
                    store.jobs.insert(r.id.clone(), r);
                }
                Err(e) => eprintln!("skipping {}: {e}", path.display()),
            }
        }
        Ok(store)
    }

    /// The folder of job `id`.
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Writes `r` (atomically) and keeps it.
    pub fn save(&mut self, r: &JobRecord) -> Result<()> {
        let d = self.job_dir(&r.id);
        private_dir(&d)?;
        write_private(&d.join("job.json"), |f| Ok(serde_json::to_writer_pretty(f, r)?))?;
        self.jobs.insert(r.id.clone(), r.clone());
        Ok(())
    }

    /// Forgets job `id` and deletes its folder.
    pub fn delete(&mut self, id: &str) -> Result<()> {
        self.jobs.remove(id);
        let d = self.job_dir(id);
        if d.exists() {
            std::fs::remove_dir_all(&d).with_context(|| format!("cannot delete {}", d.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainers::TrainerKind;

    /// A job file as the job server wrote it before the options left the CLI's clap types: it
    /// still reads, field for field.
    #[test]
    fn job_files_written_before_the_job_spec_still_read() {
        let old = r#"{"id": "j1", "name": "digits", "owner": "alice", "secret_id": "ab12", "state": "succeeded",
            "error": null, "progress": {"epochs_done": 3, "clock": 90, "workers_joined": 2, "val_accuracy": 0.95}, "created": 1, "started": 2, "finished": 3, "has_model": true,
            "request": {"name": "digits", "workers": 2, "data": "d.parquet", "validation_data": null,
                "trainer": {"trainer": "adag", "communication_window": 4, "rho": null, "elastic_lr": 0.5,
                    "momentum": null, "parallelism_factor": 1, "no_overlap": false},
                "job": {"epochs": 3, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.003,
                    "optimizer_args": "", "loss": null, "features_col": "features", "label_col": "label",
                    "shuffle": true, "seed": 7, "bn_momentum": 0.99, "add_missing_biases": false,
                    "dropout": ["dense/Relu=0.5"]}}}"#;
        let r: JobRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.request.trainer.trainer, Some(TrainerKind::Adag));
        assert_eq!((r.request.trainer.communication_window, r.request.trainer.elastic_lr), (Some(4), Some(0.5)));
        assert_eq!((r.request.job.epochs, r.request.job.seed, r.request.job.dropout.len()), (3, 7, 1));
        // And it is written back the same way.
        let again: JobRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again.request.job, r.request.job);
    }
}
