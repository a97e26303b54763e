//! The contract every executor keeps: a graph compiled once for one batch size, then run many times.

use crate::dtype::TensorRef;
use crate::error::Result;
use crate::graph::Graph;

/// A compiled graph on some device.
pub trait Executor {
    /// Runs the graph on one set of inputs (each contiguous in the input's shape, as the f32 the
    /// executors store every type in: an integer input takes whole numbers) and returns the graph
    /// outputs.
    fn run(&mut self, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>>;
    /// Runs the graph on typed inputs ([`TensorRef`]): each is checked against its input's element
    /// type and converted to the executors' f32 storage ([`crate::dtype`]).
    fn run_typed(&mut self, inputs: &[TensorRef<'_>]) -> Result<Vec<Vec<f32>>> {
        let graph = self.graph();
        if inputs.len() != graph.inputs.len() {
            return Err(crate::EngineError::BadInput(format!(
                "the graph takes {} inputs, {} given",
                graph.inputs.len(),
                inputs.len()
            )));
        }
        let stored = graph
            .inputs
            .iter()
            .zip(inputs)
            .map(|(&v, t)| t.to_storage(&graph.values[v].name, graph.values[v].dtype))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&[f32]> = stored.iter().map(|c| c.as_ref()).collect();
        self.run(&refs)
    }
    /// Copies the flat parameter buffer into `out` (length [`crate::ParamLayout::total_len`]).
    fn read_params(&mut self, out: &mut [f32]) -> Result<()>;
    /// Replaces the flat parameter buffer.
    fn write_params(&mut self, params: &[f32]) -> Result<()>;
    /// The graph this executor runs.
    fn graph(&self) -> &Graph;
    /// A one-line description of the device, for logs and benchmarks.
    fn describe(&self) -> String;
    /// The optimizer's step count and state slots (training graphs; empty otherwise).
    fn optimizer_state(&mut self) -> Result<OptimizerState>;
    /// Restores what [`Executor::optimizer_state`] returned (resuming from a checkpoint).
    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// The optimizer's progress: the steps taken and its state slots, each as long as the trainable
/// prefix of the parameter buffer, one after the other.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    /// Steps taken (Adam's `t` of the next step is `step + 1`).
    pub step: u64,
    /// The slots.
    pub slots: Vec<f32>,
}

/// The initial optimizer state of a training graph.
pub fn initial_optimizer_state(graph: &Graph) -> OptimizerState {
    let n = graph.layout.trainable_len();
    let slots = graph
        .optimizer
        .map_or(Vec::new(), |o| o.initial_state().iter().flat_map(|&v| std::iter::repeat_n(v, n)).collect());
    OptimizerState { step: 0, slots }
}

/// Checks that `inputs` match the graph's inputs in count and length.
pub fn check_inputs(graph: &Graph, inputs: &[&[f32]]) -> Result<()> {
    if inputs.len() != graph.inputs.len() {
        return Err(crate::EngineError::BadInput(format!(
            "the graph takes {} inputs, {} given",
            graph.inputs.len(),
            inputs.len()
        )));
    }
    for (&v, data) in graph.inputs.iter().zip(inputs) {
        let want = crate::shape::numel(graph.shape(v));
        if data.len() != want {
            return Err(crate::EngineError::BadInput(format!(
                "input `{}` has shape {:?} ({want} values), {} given",
                graph.values[v].name,
                graph.shape(v),
                data.len()
            )));
        }
        let info = &graph.values[v];
        crate::dtype::check_values(|| format!("input `{}`", info.name), info.dtype, data)?;
    }
    Ok(())
}
