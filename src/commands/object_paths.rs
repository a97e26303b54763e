//! `s3://` paths on the command line: each command swaps its path arguments for local stand-ins
//! (inputs downloaded, outputs written locally) and publishes the outputs once it has run.

use std::path::PathBuf;

use std::path::Path;

use anyhow::{Result, bail};

use crate::storage::{Location, StagedInput, StagedOutput, stage_input};

/// Refuses an object-store path for a flag that needs a local filesystem (logs, secrets, state
/// directories), saying why and what to do instead.
pub fn require_local(flag: &str, path: Option<&Path>, why: &str) -> Result<()> {
    if let Some(p) = path
        && Location::is_remote(p)
    {
        bail!("{flag} {}: must be a local path ({why})", p.display());
    }
    Ok(())
}

/// The staged paths of one command.
#[derive(Default)]
pub struct Staging {
    inputs: Vec<StagedInput>,
    outputs: Vec<StagedOutput>,
}

impl Staging {
    /// Replaces an input path with its local copy.
    pub fn input(&mut self, path: &mut PathBuf) -> Result<()> {
        let staged = stage_input(path)?;
        *path = staged.path().to_path_buf();
        self.inputs.push(staged);
        Ok(())
    }

    /// [`Staging::input`] for an optional path.
    pub fn input_opt(&mut self, path: &mut Option<PathBuf>) -> Result<()> {
        match path {
            Some(p) => self.input(p),
            None => Ok(()),
        }
    }

    /// Replaces an output path with its local stand-in; with `folder`, refuses an S3 prefix that
    /// holds objects already (before any work is done).
    /// Returns the output's index (for [`Staging::refuse_existing`]).
    pub fn output(&mut self, path: &mut PathBuf, folder: bool) -> Result<usize> {
        let staged = StagedOutput::new(path)?;
        if folder {
            staged.refuse_existing()?;
        }
        *path = staged.path().to_path_buf();
        self.outputs.push(staged);
        Ok(self.outputs.len() - 1)
    }

    /// Refuses output `index` (from [`Staging::output`]) when its S3 prefix holds objects: a
    /// folder output is never mixed with old parts.
    pub fn refuse_existing(&self, index: usize) -> Result<()> {
        if let Some(o) = self.outputs.get(index) {
            o.refuse_existing()?;
        }
        Ok(())
    }

    /// [`Staging::output`] for an optional file path.
    pub fn output_opt(&mut self, path: &mut Option<PathBuf>) -> Result<()> {
        if let Some(p) = path {
            self.output(p, false)?;
        }
        Ok(())
    }

    /// Uploads every output that was written, whether or not the command succeeded (an
    /// interrupted run still writes its model); the command's own error comes first.
    pub fn publish(mut self, result: Result<()>) -> Result<()> {
        // Every output is tried; each that fails is kept locally and named in the error.
        let failures: Vec<String> =
            self.outputs.iter_mut().filter_map(|o| o.publish().err()).map(|e| e.to_string()).collect();
        let published = if failures.is_empty() { Ok(()) } else { Err(anyhow::anyhow!(failures.join("; "))) };
        match (result, published) {
            (Err(e), Err(p)) => Err(e.context(format!("and uploading the outputs failed too: {p}"))),
            (Err(e), Ok(())) => Err(e),
            (Ok(()), p) => Ok(p?),
        }
    }
}
