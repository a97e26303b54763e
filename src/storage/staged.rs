//! Object-store paths as local files: an input (`s3://` file, Spark part folder or glob) is
//! downloaded into a private temporary folder and read there; an output is written locally,
//! atomically as always, and uploaded once whole (a folder's parts first, `_SUCCESS` last).
//! Local paths pass through untouched.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::location::{Location, LocationError};
use super::s3::{Bucket, S3Error, block_on};

/// Staging failed.
#[derive(Debug, Error)]
pub enum StagingError {
    /// The path's scheme is refused.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// An S3 request failed.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// Nothing at the path.
    #[error("`{0}`: no such object, folder of parts or matching object in the bucket")]
    Missing(String),
    /// A glob that does not parse.
    #[error("`{0}`: not a valid glob ({1})")]
    BadGlob(String, String),
    /// A folder output failed part way.
    #[error(
        "{reason}; parts uploaded before the failure remain under {display}/ without _SUCCESS (Spark ignores such a folder): delete them before writing there again"
    )]
    FolderIncomplete {
        /// The output.
        display: String,
        /// Why.
        reason: String,
    },
    /// The output exists as a folder already.
    #[error(
        "`{0}` holds objects already; a folder output is not mixed with old parts: remove them or choose another prefix"
    )]
    OutputExists(String),
    /// An output could not be uploaded; it is kept on local disk.
    #[error("{reason}; the output is kept at {kept}")]
    UploadFailed {
        /// Why the upload failed.
        reason: String,
        /// Where the written output is.
        kept: String,
    },
    /// The temporary folder could not be made.
    #[error("cannot create a private temporary folder for `{path}` (set TMPDIR to a disk with room): {source}")]
    TempDir {
        /// The path being staged.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A local file could not be listed.
    #[error("{path}: {source}")]
    Local {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A local copy of an input path (the path itself when it is local).
pub struct StagedInput {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl StagedInput {
    /// The local path to read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether a listed key is a file of the dataset (not a folder marker or a job's leftovers).
fn is_data_key(key: &str) -> bool {
    !key.ends_with('/') && !key.ends_with("_$folder$") && !key.contains("/_temporary/") && !key.ends_with(".crc")
}

/// The first path component holding a glob character, as a byte offset of its folder's end.
fn glob_folder(key: &str) -> Option<usize> {
    let first = key.find(['*', '?', '['])?;
    Some(key[..first].rfind('/').map_or(0, |i| i + 1))
}

fn temp_dir(display: &str) -> Result<tempfile::TempDir, StagingError> {
    tempfile::Builder::new()
        .prefix("distk-s3-")
        .tempdir()
        .map_err(|source| StagingError::TempDir { path: display.to_string(), source })
}

/// Makes `path` readable locally: a local path as is; `s3://bucket/key` as the object, or the
/// folder of objects below `key/` (kept as a tree, so Spark's part layout and `col=value`
/// partition folders read as they do on disk), or the objects a glob in the key matches.
pub fn stage_input(path: &Path) -> Result<StagedInput, StagingError> {
    let (bucket, key) = match Location::parse(path)? {
        Location::Local => return Ok(StagedInput { path: path.to_path_buf(), _dir: None }),
        Location::S3 { bucket, key } => (bucket, key),
    };
    let display = path.display().to_string();
    let dir = temp_dir(&display)?;
    let root = dir.path().to_path_buf();
    let local = block_on(|| async {
        let b = Bucket::open(&bucket)?;
        if let Some(folder_end) = glob_folder(&key) {
            let pattern =
                glob::Pattern::new(&key).map_err(|e| StagingError::BadGlob(display.clone(), e.to_string()))?;
            let options = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
            let folder = key[..folder_end].trim_end_matches('/');
            let objects = b.list(folder).await?;
            let pairs: Vec<_> = objects
                .iter()
                .filter(|o| o.size > 0)
                .map(|o| o.location.to_string())
                .filter(|k| is_data_key(k) && pattern.matches_with(k, options))
                .map(|k| (k.clone(), root.join(&k)))
                .collect();
            if pairs.is_empty() {
                return Err(StagingError::Missing(display.clone()));
            }
            download_tree(&b, pairs).await?;
            return Ok(root.join(&key));
        }
        let name = key.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(&bucket).to_string();
        if b.head(&key).await?.is_some() {
            let local = root.join(&name);
            b.download(&key, &local).await?;
            return Ok(local);
        }
        let objects = b.list(&key).await?;
        let base = root.join(&name);
        // Zero-byte objects are folder markers (the console's `folder/`, s3a's) or `_SUCCESS`:
        // nothing to read.
        let pairs: Vec<_> = objects
            .iter()
            .filter(|o| o.size > 0)
            .map(|o| o.location.to_string())
            .filter(|k| is_data_key(k))
            .filter_map(|k| {
                let rel = if key.is_empty() { k.as_str() } else { k.strip_prefix(&key)?.strip_prefix('/')? };
                Some((k.clone(), base.join(rel)))
            })
            .collect();
        if pairs.is_empty() {
            return Err(StagingError::Missing(display.clone()));
        }
        download_tree(&b, pairs).await?;
        Ok(base)
    })?;
    Ok(StagedInput { path: local, _dir: Some(dir) })
}

/// Downloads (key, local path) pairs, creating the local folders first.
async fn download_tree(b: &Bucket, pairs: Vec<(String, PathBuf)>) -> Result<(), StagingError> {
    for (_, local) in &pairs {
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| StagingError::Local { path: parent.display().to_string(), source })?;
        }
    }
    b.download_all(pairs).await?;
    Ok(())
}

/// An output path: local, or a local stand-in uploaded by [`StagedOutput::publish`].
pub struct StagedOutput {
    path: PathBuf,
    remote: Option<(String, String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl StagedOutput {
    /// Prepares `path` for writing; for S3 a stand-in in a private temporary folder with the
    /// same file name (so extension checks read as for the real path).
    pub fn new(path: &Path) -> Result<StagedOutput, StagingError> {
        let (bucket, key) = match Location::parse(path)? {
            Location::Local => return Ok(StagedOutput { path: path.to_path_buf(), remote: None, _dir: None }),
            Location::S3 { bucket, key } => (bucket, key),
        };
        let display = path.display().to_string();
        if key.is_empty() {
            return Err(StagingError::Location(LocationError::Malformed {
                path: display,
                why: "an output needs a key: s3://BUCKET/KEY",
            }));
        }
        // A missing bucket or wrong credentials fail here, before any work.
        block_on(|| async { Bucket::open(&bucket)?.probe(&key).await })?;
        let dir = temp_dir(&display)?;
        let name = key.rsplit('/').next().unwrap_or(&key).to_string();
        Ok(StagedOutput { path: dir.path().join(name), remote: Some((bucket, key, display)), _dir: Some(dir) })
    }

    /// Same as [`StagedOutput::new`] for an optional path.
    pub fn optional(path: Option<&Path>) -> Result<Option<StagedOutput>, StagingError> {
        path.map(StagedOutput::new).transpose()
    }

    /// The local path to write.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses an S3 output whose key is an object, or a prefix holding objects, already (a
    /// folder output is never mixed with old parts); a local path is checked where it is written.
    pub fn refuse_existing(&self) -> Result<(), StagingError> {
        let Some((bucket, key, display)) = &self.remote else {
            return Ok(());
        };
        block_on(|| async {
            let b = Bucket::open(bucket)?;
            let holds_data = b.list(key).await?.iter().any(|o| o.size > 0);
            if b.head(key).await?.is_some_and(|o| o.size > 0) || holds_data {
                return Err(StagingError::OutputExists(display.clone()));
            }
            Ok(())
        })
    }

    /// Uploads what was written (nothing for a local path, or when nothing was written): a
    /// file as one object; a folder object by object, `_SUCCESS` last. A folder output whose
    /// prefix holds objects already is refused before anything is uploaded.
    pub fn publish(&mut self) -> Result<(), StagingError> {
        let outcome = self.upload();
        if let Err(e) = outcome {
            // Nothing is lost: the written output stays where it is and the error says where.
            if let Some(dir) = self._dir.take() {
                let kept = dir.keep();
                return Err(StagingError::UploadFailed {
                    reason: e.to_string(),
                    kept: kept.join(self.path.file_name().unwrap_or_default()).display().to_string(),
                });
            }
            return Err(e);
        }
        Ok(())
    }

    fn upload(&self) -> Result<(), StagingError> {
        let Some((bucket, key, display)) = &self.remote else {
            return Ok(());
        };
        let folder = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let written: Vec<String> = if self.path.is_dir() {
            Vec::new()
        } else {
            let io = |source| StagingError::Local { path: folder.display().to_string(), source };
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&folder).map_err(io)? {
                let entry = entry.map_err(io)?;
                let name = entry.file_name().to_string_lossy().to_string();
                if entry.path().is_file() && !name.starts_with('.') {
                    names.push(name);
                }
            }
            names.sort();
            names
        };
        if !self.path.exists() && written.is_empty() {
            return Ok(());
        }
        let files = if self.path.is_dir() { list_files(&self.path)? } else { Vec::new() };
        block_on(|| async {
            let b = Bucket::open(bucket)?;
            if !self.path.is_dir() {
                // The file and whatever the command wrote beside it under its name (an ensemble
                // writes NAME-0.onnx, NAME-1.onnx ... instead of NAME.onnx).
                let parent = key.rsplit_once('/').map_or(String::new(), |(p, _)| format!("{p}/"));
                for name in &written {
                    b.upload(&folder.join(name), &format!("{parent}{name}")).await?;
                }
                return Ok(());
            }
            if b.list(key).await?.iter().any(|o| o.size > 0) {
                return Err(StagingError::OutputExists(display.clone()));
            }
            let (marker, parts): (Vec<_>, Vec<_>) =
                files.iter().partition(|rel| rel.file_name().is_some_and(|n| n == "_SUCCESS"));
            for rel in parts.into_iter().chain(marker) {
                let object = format!("{key}/{}", rel.to_string_lossy().replace('\\', "/"));
                if let Err(e) = b.upload(&self.path.join(rel), &object).await {
                    return Err(StagingError::FolderIncomplete { display: display.clone(), reason: e.to_string() });
                }
            }
            Ok(())
        })
    }
}

/// Every file below `root`, as paths relative to it, sorted.
fn list_files(root: &Path) -> Result<Vec<PathBuf>, StagingError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let io = |source| StagingError::Local { path: dir.display().to_string(), source };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_globs() {
        assert!(is_data_key("d/part-00000.parquet"));
        assert!(is_data_key("d/_SUCCESS"));
        assert!(!is_data_key("d/"));
        assert!(!is_data_key("d_$folder$"));
        assert!(!is_data_key("d/_temporary/0/part-1.parquet"));
        assert!(!is_data_key("d/.part-00000.parquet.crc"));
        assert_eq!(glob_folder("d/sub/part-*.parquet"), Some(6));
        assert_eq!(glob_folder("*.parquet"), Some(0));
        assert_eq!(glob_folder("d/x.parquet"), None);
    }

    #[test]
    fn local_paths_pass_through() {
        let p = Path::new("some/local/file.parquet");
        assert_eq!(stage_input(p).unwrap().path(), p);
        let mut out = StagedOutput::new(p).unwrap();
        assert_eq!(out.path(), p);
        out.publish().unwrap();
        assert!(StagedOutput::new(Path::new("s3://bkt")).is_err());
        assert!(matches!(stage_input(Path::new("gs://b/k")), Err(StagingError::Location(_))));
    }
}
