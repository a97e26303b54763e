//! Loss and accuracy of a model over a dataset (the `evaluate` command and validation).

use anyhow::Result;
use distk_engine::Executor;
use distk_engine::autodiff::{build_eval_graph, fuse_output};
use distk_onnx::OnnxModel;

use crate::data::dataset::Dataset;
use crate::runtime::Runtime;

/// Loss, accuracy and row count.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Mean loss over the rows.
    pub loss: f64,
    /// Accuracy over the rows.
    pub accuracy: f64,
    /// Rows evaluated.
    pub rows: usize,
}

/// A model's evaluation graph compiled for one batch size; a partial last batch is masked.
pub struct Evaluator {
    exec: Box<dyn Executor>,
    batch: usize,
    x: Vec<f32>,
    y: Vec<f32>,
    w: Vec<f32>,
}

impl Evaluator {
    /// Compiles the evaluation graph of `model` with the Keras loss `loss` (integer labels).
    pub fn new(model: &OnnxModel, runtime: &mut Runtime, batch: usize, loss: &str) -> Result<Self> {
        Self::with_import(model, runtime, batch, loss, true, &distk_onnx::ImportOptions::default(), None)
    }

    /// [`Evaluator::new`] with import choices (the same as the training session's, so the
    /// parameter layouts match).
    pub fn with_import(
        model: &OnnxModel,
        runtime: &mut Runtime,
        batch: usize,
        loss: &str,
        sparse: bool,
        import: &distk_onnx::ImportOptions,
        from_logits: Option<bool>,
    ) -> Result<Self> {
        let g = distk_onnx::import_with(model, batch, import)?.graph;
        let width = distk_engine::shape::numel(g.shape(g.inputs[0])) / batch;
        let (prediction, kind) = fuse_output(&g, loss, sparse, from_logits)?;
        let target_shape = if kind.sparse_targets() { vec![batch] } else { g.shape(prediction).to_vec() };
        let tw = distk_engine::shape::numel(&target_shape) / batch;
        let eval = build_eval_graph(g, kind, prediction, target_shape)?;
        Ok(Evaluator {
            exec: runtime.compile(eval)?,
            batch,
            x: vec![0.0; batch * width],
            y: vec![0.0; batch * tw],
            w: vec![0.0; batch],
        })
    }

    /// Uses these parameters (the flat buffer of a training session of the same model).
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        Ok(self.exec.write_params(p)?)
    }

    /// Evaluates every row of `data`.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Evaluation> {
        let (mut loss, mut acc) = (0.0f64, 0.0f64);
        let width = data.width;
        let mut start = 0;
        while start < data.rows {
            let n = self.batch.min(data.rows - start);
            self.x[..n * width].copy_from_slice(&data.features[start * width..(start + n) * width]);
            self.x[n * width..].iter_mut().for_each(|v| *v = 0.0);
            let lw = self.y.len() / self.batch;
            if lw != data.label_width {
                anyhow::bail!("the data has {} targets per row, the loss takes {lw}", data.label_width);
            }
            self.y[..n * lw].copy_from_slice(&data.labels[start * lw..(start + n) * lw]);
            self.y[n * lw..].iter_mut().for_each(|v| *v = 0.0);
            self.w.iter_mut().enumerate().for_each(|(i, v)| *v = if i < n { 1.0 } else { 0.0 });
            let out = self.exec.run(&[&self.x, &self.y, &self.w])?;
            loss += out[0][0] as f64 * n as f64;
            acc += out[1][0] as f64 * n as f64;
            start += n;
        }
        let rows = data.rows.max(1) as f64;
        Ok(Evaluation { loss: loss / rows, accuracy: acc / rows, rows: data.rows })
    }
}
