//! Checkpoints: parameters, optimizer state, and the position in training, so `--resume`
//! continues where a run stopped. Written atomically (data files first, the metadata last).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::data::atomic::write_atomically;

/// Where training stood.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckpointMeta {
    /// The epoch in progress.
    pub epoch: usize,
    /// Batches of that epoch already trained.
    pub batch_in_epoch: usize,
    /// Steps taken in total.
    pub global_step: u64,
    /// The optimizer's step count.
    pub optimizer_step: u64,
    /// Length of the parameter buffer (checked on resume).
    pub param_len: usize,
    /// Length of the optimizer state (checked on resume).
    pub state_len: usize,
    /// The shuffle seed the run used.
    pub seed: u64,
}

/// A whole checkpoint.
pub struct Checkpoint {
    /// Where training stood.
    pub meta: CheckpointMeta,
    /// The flat parameter buffer.
    pub params: Vec<f32>,
    /// The optimizer's state slots.
    pub state: Vec<f32>,
}

fn paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (dir.join("checkpoint.json"), dir.join("params.f32"), dir.join("optimizer.f32"))
}

fn write_f32s(path: &Path, v: &[f32]) -> Result<()> {
    write_atomically(path, |f| {
        use std::io::Write;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        Ok(f.write_all(&bytes)?)
    })
}

fn read_f32s(path: &Path, len: usize) -> Result<Vec<f32>> {
    let b = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if b.len() != len * 4 {
        bail!("`{}` holds {} bytes, the checkpoint says {}", path.display(), b.len(), len * 4);
    }
    Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

impl Checkpoint {
    /// Writes the checkpoint into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create checkpoint directory `{}`", dir.display()))?;
        let (meta, params, state) = paths(dir);
        write_f32s(&params, &self.params)?;
        write_f32s(&state, &self.state)?;
        write_atomically(&meta, |f| Ok(serde_json::to_writer_pretty(f, &self.meta)?))
    }

    /// Reads the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let (meta_path, params, state) = paths(dir);
        let text = std::fs::read_to_string(&meta_path)
            .with_context(|| format!("no checkpoint to resume in `{}` (missing checkpoint.json)", dir.display()))?;
        let meta: CheckpointMeta =
            serde_json::from_str(&text).with_context(|| format!("`{}` is not a checkpoint", meta_path.display()))?;
        let params = read_f32s(&params, meta.param_len)?;
        let state = read_f32s(&state, meta.state_len)?;
        Ok(Checkpoint { meta, params, state })
    }
}
