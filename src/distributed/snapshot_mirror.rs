//! A copy of the parameter server's snapshots in object storage (`--snapshot-copy s3://...`), so
//! that a server whose machine is lost can resume elsewhere from the last one. The write-ahead log
//! stays in the local checkpoint directory (it needs append and fsync): what was acknowledged since
//! the last uploaded snapshot is recoverable only with that directory.
//!
//! Each snapshot is hard-linked when written (the next one replaces the file by rename, so the
//! link keeps this one whole) and uploaded in the background, one at a time; a snapshot written
//! while one uploads waits for the next, and the last one is always uploaded before the run ends.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};
use distk_net::durable::{SNAPSHOT_FILE, snapshot_path};

use crate::storage::Location;
use crate::storage::s3::{Bucket, S3Error, block_on};

/// The files copied with each snapshot, before it: its summary and the run's validated epochs and
/// recoveries (what `--history` and `--plot` report after a resume). The snapshot goes last, so
/// a copy with `state.bin` has the files that belong with it or newer ones.
const BESIDE: [&str; 3] = ["ps.json", "epochs.json", "recoveries.json"];

/// Uploads a checkpoint directory's snapshots to an S3 prefix.
pub struct SnapshotMirror {
    bucket: String,
    prefix: String,
    display: String,
    staging: tempfile::TempDir,
    uploading: Option<JoinHandle<Result<()>>>,
    /// The last upload's failure, reported once.
    failed: Option<String>,
}

fn parse(url: &Path) -> Result<(String, String)> {
    match Location::parse(url)? {
        Location::S3 { bucket, key } if !key.is_empty() => Ok((bucket, key)),
        Location::S3 { .. } => bail!("--snapshot-copy {}: give a prefix, s3://BUCKET/PREFIX", url.display()),
        Location::Local => bail!(
            "--snapshot-copy {}: give an s3:// prefix (snapshots are in --checkpoint-dir locally already)",
            url.display()
        ),
    }
}

impl SnapshotMirror {
    /// A mirror of checkpoint directory `dir` to `url` (`s3://bucket/prefix`); a bucket that
    /// cannot be listed fails here, before the run.
    pub fn new(url: &Path, dir: &Path) -> Result<SnapshotMirror> {
        let (bucket, prefix) = parse(url)?;
        block_on(|| async { Bucket::open(&bucket)?.probe(&prefix).await })?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // In the checkpoint directory, so that the snapshot can be hard-linked (same filesystem).
        let staging = tempfile::Builder::new()
            .prefix(".distk-snapshot-copy-")
            .tempdir_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        Ok(SnapshotMirror {
            bucket,
            prefix,
            display: url.display().to_string(),
            staging,
            uploading: None,
            failed: None,
        })
    }

    /// Starts uploading the snapshot just written in `dir`, unless one is still uploading.
    pub fn offer(&mut self, dir: &Path) {
        if self.uploading.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.collect();
        match self.link(dir) {
            Ok(files) => {
                let (bucket, prefix) = (self.bucket.clone(), self.prefix.clone());
                self.uploading = Some(std::thread::spawn(move || upload(&bucket, &prefix, &files)));
            }
            Err(e) => self.failed = Some(format!("{e:#}")),
        }
    }

    /// Uploads the snapshot in `dir` now and waits for it: at a fresh start (so that an older
    /// run's copy under the same prefix is replaced before anything could resume from it) and at
    /// the run's end.
    pub fn sync(&mut self, dir: &Path) -> Result<()> {
        if let Some(h) = self.uploading.take() {
            let _ = h.join();
        }
        let files = self.link(dir)?;
        upload(&self.bucket, &self.prefix, &files).with_context(|| format!("--snapshot-copy {}", self.display))
    }

    /// Reports a finished upload's failure (the run goes on: the local snapshot is whole).
    fn collect(&mut self) {
        if let Some(h) = self.uploading.take() {
            let outcome = h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the upload thread panicked")));
            if let Err(e) = outcome {
                self.failed = Some(format!("{e:#}"));
            }
        }
        if let Some(e) = self.failed.take() {
            eprintln!("cannot copy the snapshot to {}: {e} (the local one is whole; the next is tried)", self.display);
        }
    }

    /// Hard links of the snapshot and its summary, fixed against the next checkpoint's rename.
    fn link(&self, dir: &Path) -> Result<Vec<(PathBuf, String)>> {
        let mut files = Vec::new();
        for name in BESIDE.into_iter().chain([SNAPSHOT_FILE]) {
            let source = dir.join(name);
            if name != SNAPSHOT_FILE && !source.exists() {
                continue;
            }
            let linked = self.staging.path().join(name);
            let _ = std::fs::remove_file(&linked);
            if std::fs::hard_link(&source, &linked).is_err() {
                std::fs::copy(&source, &linked).with_context(|| format!("cannot read {}", source.display()))?;
            }
            files.push((linked, name.to_string()));
        }
        Ok(files)
    }
}

/// Uploads the files in order (the snapshot last).
fn upload(bucket: &str, prefix: &str, files: &[(PathBuf, String)]) -> Result<()> {
    block_on(|| async {
        let b = Bucket::open(bucket)?;
        for (local, name) in files {
            b.upload(local, &format!("{prefix}/{name}")).await?;
        }
        Ok::<(), S3Error>(())
    })?;
    Ok(())
}

/// Fills an empty checkpoint directory from the copy at `url` (for `--resume` on a new machine):
/// the snapshot and its summary; nothing when `dir` has a snapshot already. Returns whether it
/// downloaded.
pub fn restore_if_missing(dir: &Path, url: &Path) -> Result<bool> {
    if snapshot_path(dir).exists() {
        return Ok(false);
    }
    let (bucket, prefix) = parse(url)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".distk-restore-")
        .tempdir_in(dir)
        .context("cannot write in the checkpoint directory")?;
    let found = block_on(|| async {
        let b = Bucket::open(&bucket)?;
        let key = format!("{prefix}/{SNAPSHOT_FILE}");
        if b.head(&key).await?.is_none() {
            return Ok::<bool, S3Error>(false);
        }
        b.download(&key, &staging.path().join(SNAPSHOT_FILE)).await?;
        for name in BESIDE {
            let object = format!("{prefix}/{name}");
            if b.head(&object).await?.is_some() {
                b.download(&object, &staging.path().join(name)).await?;
            }
        }
        Ok(true)
    })?;
    if !found {
        bail!(
            "--resume: no snapshot in {} and none at {}/{SNAPSHOT_FILE}",
            dir.display(),
            url.display().to_string().trim_end_matches('/')
        );
    }
    // The summary first, the snapshot last: a directory with state.bin is a whole checkpoint.
    for name in BESIDE {
        let file = staging.path().join(name);
        if file.exists() {
            std::fs::rename(&file, dir.join(name)).with_context(|| format!("cannot move {name} into place"))?;
        }
    }
    std::fs::rename(staging.path().join(SNAPSHOT_FILE), snapshot_path(dir))
        .context("cannot move the snapshot into place")?;
    Ok(true)
}

impl Drop for SnapshotMirror {
    /// An upload in flight is waited for (a run that ends early still leaves a whole copy).
    fn drop(&mut self) {
        if let Some(h) = self.uploading.take() {
            let _ = h.join();
        }
    }
}
