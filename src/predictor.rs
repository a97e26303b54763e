//! Running an imported model over rows of any count: a graph compiled for the batch size, and a
//! second one for the remainder, so no row is dropped or padded.

use std::collections::HashMap;

use anyhow::{Result, bail};
use distk_engine::{EngineError, Executor};
use distk_onnx::OnnxModel;

use crate::runtime::Runtime;

/// Runs forward passes of one model on one device.
pub struct Predictor {
    model: OnnxModel,
    runtime: Runtime,
    executors: HashMap<usize, Box<dyn Executor>>,
    /// Values per row the model takes (its input shape without the batch dim).
    pub row_width: usize,
    /// Values per row the model returns.
    pub output_width: usize,
    /// The model's input shape for display, e.g. `[N, 28, 28, 1]`.
    pub input_display: String,
}

impl Predictor {
    /// Prepares a model with one input and one output.
    pub fn new(model: OnnxModel, runtime: Runtime) -> Result<Self> {
        let inputs = model.inputs()?;
        let outputs = model.outputs()?;
        if inputs.len() != 1 || outputs.len() != 1 {
            bail!(
                "the model has {} inputs and {} outputs; distk-gpu runs models with one input and one output",
                inputs.len(),
                outputs.len()
            );
        }
        crate::training::model_io::refuse_fixed_batch_for_inference(&model)?;
        let row_width = inputs[0].bind(1).iter().product();
        // Importing once up front checks the whole model before any data is read.
        let probe = distk_onnx::import(&model, 1)?;
        let output_width = distk_engine::shape::numel(probe.graph.shape(probe.graph.outputs[0]));
        let input_display = inputs[0].display();
        Ok(Predictor { model, runtime, executors: HashMap::new(), row_width, output_width, input_display })
    }

    /// The device description.
    pub fn describe(&self) -> String {
        self.runtime.describe()
    }

    /// Runs `rows` rows (`rows * row_width` values) and returns `rows * output_width` values.
    pub fn predict(&mut self, rows: usize, features: &[f32]) -> Result<Vec<f32>> {
        if features.len() != rows * self.row_width {
            bail!("{} values given for {rows} rows of {} features", features.len(), self.row_width);
        }
        if rows == 0 {
            return Ok(Vec::new());
        }
        if !self.executors.contains_key(&rows) {
            let imported = distk_onnx::import(&self.model, rows)?;
            match self.runtime.compile(imported.graph) {
                Ok(exec) => {
                    self.executors.insert(rows, exec);
                }
                // A batch whose tensors exceed what the adapter binds runs as two smaller ones.
                Err(e) if rows > 1 && matches!(e.downcast_ref::<EngineError>(), Some(EngineError::Limit(_))) => {
                    let half = rows / 2;
                    let mut out = self.predict(half, &features[..half * self.row_width])?;
                    out.extend(self.predict(rows - half, &features[half * self.row_width..])?);
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
        }
        let exec = self.executors.get_mut(&rows).expect("inserted above");
        let mut out = exec.run(&[features])?;
        Ok(out.swap_remove(0))
    }
}
