//! Forward and training throughput of a model on one executor.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use distk_onnx::OnnxModel;

use crate::bench::{ForwardResult, median};
use crate::runtime::{DeviceChoice, Runtime};

/// The deterministic synthetic rows every throughput measurement feeds (the PyTorch script too).
fn synthetic(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect()
}

/// Seconds per call of `run`: after one warm-up call, the median over `repeats` timings of as many
/// calls as fit in about `budget` seconds.
fn seconds_per_call(repeats: usize, budget: f64, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
    run()?;
    let t0 = Instant::now();
    run()?;
    let calls = ((budget / t0.elapsed().as_secs_f64().max(1e-6)) as usize).clamp(1, 1000);
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        for _ in 0..calls {
            run()?;
        }
        times.push(t.elapsed() / calls as u32);
    }
    Ok(median(times).as_secs_f64().max(1e-9))
}

fn result(path: &Path, runtime: &Runtime, batch: usize, seconds: f64) -> ForwardResult {
    ForwardResult {
        model: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        executor: runtime.describe(),
        batch_size: batch,
        rows_per_s: batch as f64 / seconds,
    }
}

/// Rows per second of forward passes of `batch` rows (input upload and readback included).
pub fn forward_throughput(
    path: &Path,
    device: DeviceChoice,
    adapter: Option<usize>,
    batch: usize,
    repeats: usize,
) -> Result<ForwardResult> {
    let model = OnnxModel::load(path)?;
    let mut runtime = Runtime::open(device, adapter)?;
    let imported = distk_onnx::import(&model, batch)?;
    let x = synthetic(distk_engine::shape::numel(imported.graph.shape(imported.graph.inputs[0])));
    let mut exec = runtime.compile(imported.graph)?;
    let seconds = seconds_per_call(repeats, 0.25, || {
        exec.run(&[&x])?;
        Ok(())
    })?;
    Ok(result(path, &runtime, batch, seconds))
}

/// Training rows per second at `batch` rows per step (Adam, sparse cross-entropy).
pub fn train_throughput(
    path: &Path,
    device: DeviceChoice,
    adapter: Option<usize>,
    batch: usize,
    repeats: usize,
) -> Result<ForwardResult> {
    let model = OnnxModel::load(path)?;
    let mut runtime = Runtime::open(device, adapter)?;
    let opt = crate::training::parse_optimizer("adam", None, "")?;
    let mut s =
        crate::training::TrainSession::new(&model, &mut runtime, batch, "sparse_categorical_crossentropy", true, opt)?;
    let x = synthetic(batch * s.row_width);
    let y: Vec<f32> = (0..batch).map(|i| (i % s.output_width) as f32).collect();
    let seconds = seconds_per_call(repeats, 0.5, || {
        s.step(batch, &x, &y)?;
        Ok(())
    })?;
    Ok(result(path, &runtime, batch, seconds))
}
