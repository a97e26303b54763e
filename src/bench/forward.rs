//! Forward throughput of a model on one executor.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use distk_onnx::OnnxModel;

use crate::bench::{ForwardResult, median};
use crate::runtime::{DeviceChoice, Runtime};

/// Rows per second of `model` at `batch` rows per pass: the median over `repeats` timings of
/// `passes` forward passes each (after one warm-up pass), input upload and readback included.
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
    let width: usize = distk_engine::shape::numel(imported.graph.shape(imported.graph.inputs[0]));
    let mut exec = runtime.compile(imported.graph)?;
    let x: Vec<f32> = (0..width).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    exec.run(&[&x])?;
    // Aim for about a quarter second per timing.
    let t0 = Instant::now();
    exec.run(&[&x])?;
    let once = t0.elapsed().as_secs_f64().max(1e-6);
    let passes = ((0.25 / once) as usize).clamp(1, 1000);
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        for _ in 0..passes {
            exec.run(&[&x])?;
        }
        times.push(t.elapsed() / passes as u32);
    }
    let per_pass = median(times).as_secs_f64().max(1e-9);
    Ok(ForwardResult {
        model: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        executor: runtime.describe(),
        batch_size: batch,
        rows_per_s: batch as f64 / per_pass,
    })
}

/// Training rows per second of `model` at `batch` rows per step (Adam, sparse cross-entropy, fixed
/// synthetic rows), the median over `repeats` timings after two warm-up steps.
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
    let x: Vec<f32> = (0..batch * s.row_width).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    let y: Vec<f32> = (0..batch).map(|i| (i % s.output_width) as f32).collect();
    s.step(batch, &x, &y)?;
    let t0 = Instant::now();
    s.step(batch, &x, &y)?;
    let once = t0.elapsed().as_secs_f64().max(1e-6);
    let steps = ((0.5 / once) as usize).clamp(1, 1000);
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        for _ in 0..steps {
            s.step(batch, &x, &y)?;
        }
        times.push(t.elapsed() / steps as u32);
    }
    let per_step = median(times).as_secs_f64().max(1e-9);
    Ok(ForwardResult {
        model: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        executor: runtime.describe(),
        batch_size: batch,
        rows_per_s: batch as f64 / per_step,
    })
}
