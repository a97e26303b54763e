//! Distributed training: the job handed to workers, contiguous shards, the worker loop, the
//! parameter server of a run, the local launcher of `run --workers`, and the end-of-run report.

pub mod history_export;
pub mod job;
pub mod launch;
pub mod ps;
pub mod report;
pub mod shard;
pub mod snapshot_mirror;
pub mod worker;

/// A run that ended with a model, but not as planned (a worker lost, an interruption): the CLI
/// exits with status 3 after writing what it has.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PartialRun(pub String);

/// A tokio runtime for the network side (two threads, beside the engine threads).
pub fn net_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().thread_name("distk-net").build()?)
}
