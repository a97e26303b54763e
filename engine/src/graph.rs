//! The graph: values with static shapes, and nodes in topological order.

use std::sync::Arc;

use crate::dtype::DType;
use crate::error::{EngineError, Result};
use crate::layout::ParamLayout;
use crate::ops::Op;

/// Index of a value in [`Graph::values`].
pub type ValueId = usize;

/// What a value is, which decides where it lives.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// Fed by the caller on every run.
    Input,
    /// A parameter: a tensor of the flat parameter buffer ([`Graph::layout`] slot `slot`).
    Param {
        /// Index in the layout's slots.
        slot: usize,
    },
    /// A constant that is not a parameter (uploaded once).
    Constant(Arc<Vec<f32>>),
    /// Computed by a node.
    Activation,
}

/// One value of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    /// A name for messages (the ONNX tensor name where there is one).
    pub name: String,
    /// Its static shape.
    pub shape: Vec<usize>,
    /// Its element type (stored as f32 whatever it is: [`crate::dtype`]).
    pub dtype: DType,
    /// Its kind.
    pub kind: ValueKind,
}

/// One operation, computing `outputs` from `inputs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// A name for messages (the ONNX node name where there is one).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Its operands.
    pub inputs: Vec<ValueId>,
    /// The values it computes: most ops one, multi-output ops (TopK's values and indices) more.
    pub outputs: Vec<ValueId>,
}

impl Node {
    /// The node's first (for most ops, only) output.
    pub fn output(&self) -> ValueId {
        self.outputs[0]
    }
}

/// A static graph for one batch size: values, nodes in execution order, inputs, outputs, and the
/// parameter layout with initial values.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// All values; a [`ValueId`] indexes this.
    pub values: Vec<ValueInfo>,
    /// Nodes in a valid execution order.
    pub nodes: Vec<Node>,
    /// The values fed by the caller, in order.
    pub inputs: Vec<ValueId>,
    /// The values returned to the caller, in order.
    pub outputs: Vec<ValueId>,
    /// Where each parameter tensor sits in the flat parameter buffer.
    pub layout: ParamLayout,
    /// Initial parameter values, laid out by `layout` (padding is zero).
    pub initial_params: Vec<f32>,
    /// For training graphs: the gradient value of each trainable parameter slot. The executors place
    /// each at its slot's offset in a flat gradient buffer laid out like the parameters.
    pub param_grads: Vec<(usize, ValueId)>,
    /// For training graphs: the update applied to the trainable parameters after each run.
    pub optimizer: Option<crate::optimizer::Optimizer>,
    /// For training graphs: state parameters (slot) replaced by a computed value after each run,
    /// such as BatchNorm running statistics.
    pub state_updates: Vec<(usize, ValueId)>,
}

impl Graph {
    /// The shape of a value.
    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.values[v].shape
    }

    /// The element type of a value.
    pub fn dtype(&self, v: ValueId) -> DType {
        self.values[v].dtype
    }

    /// For each value, the index of the last node that reads it (or `usize::MAX` for graph
    /// outputs, which live to the end). `None` for values no node reads.
    pub fn last_uses(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                last[v] = Some(i);
            }
        }
        for &o in self.outputs.iter().chain(self.state_updates.iter().map(|(_, v)| v)) {
            last[o] = Some(usize::MAX);
        }
        last
    }
}

/// Builds a [`Graph`], inferring each node's output shape as it is added.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: Graph,
    param_data: Vec<Vec<f32>>,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that continues an existing graph (its values, nodes and parameters kept).
    pub fn from_graph(graph: Graph) -> Self {
        let param_data =
            graph.layout.slots.iter().map(|s| graph.initial_params[s.offset..s.offset + s.len].to_vec()).collect();
        GraphBuilder { graph, param_data }
    }

    /// Number of values so far.
    pub fn graph_values_len(&self) -> usize {
        self.graph.values.len()
    }

    /// Whether parameter slot `slot` is trainable.
    pub fn param_trainable(&self, slot: usize) -> bool {
        self.graph.layout.slots[slot].trainable
    }

    /// The gradient values pinned so far.
    pub fn param_grad_values(&self) -> Vec<ValueId> {
        self.graph.param_grads.iter().map(|&(_, v)| v).collect()
    }

    /// The graph's outputs so far.
    pub fn outputs(&self) -> &[ValueId] {
        &self.graph.outputs
    }

    /// Replaces the graph's outputs.
    pub fn set_outputs(&mut self, outputs: Vec<ValueId>) {
        self.graph.outputs = outputs;
    }

    /// The nodes added so far.
    pub fn nodes(&self) -> &[Node] {
        &self.graph.nodes
    }

    /// Records the gradient value of a parameter slot (training graphs).
    pub fn set_param_grad(&mut self, slot: usize, grad: ValueId) {
        self.graph.param_grads.push((slot, grad));
    }

    /// Records that state parameter `slot` takes the value `v` after each run (training graphs).
    pub fn set_state_update(&mut self, slot: usize, v: ValueId) {
        self.graph.state_updates.push((slot, v));
    }

    /// Sets the optimizer run after each step (training graphs).
    pub fn set_optimizer(&mut self, optimizer: crate::optimizer::Optimizer) {
        self.graph.optimizer = Some(optimizer);
    }

    fn push_value(&mut self, name: &str, shape: Vec<usize>, dtype: DType, kind: ValueKind) -> ValueId {
        self.graph.values.push(ValueInfo { name: name.to_string(), shape, dtype, kind });
        self.graph.values.len() - 1
    }

    /// Adds a float32 graph input.
    pub fn input(&mut self, name: &str, shape: Vec<usize>) -> ValueId {
        self.typed_input(name, shape, DType::F32)
    }

    /// Adds a graph input of element type `dtype`.
    pub fn typed_input(&mut self, name: &str, shape: Vec<usize>, dtype: DType) -> ValueId {
        let v = self.push_value(name, shape, dtype, ValueKind::Input);
        self.graph.inputs.push(v);
        v
    }

    /// Adds a parameter with its initial values (`trainable` false for state such as running statistics).
    pub fn param(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>, trainable: bool) -> Result<ValueId> {
        if data.len() != crate::shape::numel(&shape) {
            return Err(EngineError::BadInput(format!(
                "parameter `{name}`: {} values for shape {shape:?}",
                data.len()
            )));
        }
        let slot = self.graph.layout.push(name, shape.clone(), trainable);
        self.param_data.push(data);
        Ok(self.push_value(name, shape, DType::F32, ValueKind::Param { slot }))
    }

    /// Adds a float32 constant.
    pub fn constant(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) -> Result<ValueId> {
        self.typed_constant(name, shape, data, DType::F32)
    }

    /// Adds a constant of element type `dtype` (its values checked to be of that type and exact
    /// in the f32 storage).
    pub fn typed_constant(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>, dtype: DType) -> Result<ValueId> {
        if data.len() != crate::shape::numel(&shape) {
            return Err(EngineError::BadInput(format!("constant `{name}`: {} values for shape {shape:?}", data.len())));
        }
        crate::dtype::check_values(|| format!("constant `{name}`"), dtype, &data)?;
        Ok(self.push_value(name, shape, dtype, ValueKind::Constant(Arc::new(data))))
    }

    /// The shape of a value added so far.
    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.graph.values[v].shape
    }

    /// The element type of a value added so far.
    pub fn dtype(&self, v: ValueId) -> DType {
        self.graph.values[v].dtype
    }

    /// The kind of a value added so far.
    pub fn kind(&self, v: ValueId) -> &ValueKind {
        &self.graph.values[v].kind
    }

    /// Adds a node computing `op` of `inputs`; returns its (first) output value.
    pub fn node(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId> {
        Ok(self.node_outputs(name, op, inputs)?[0])
    }

    /// Adds a node computing `op` of `inputs`; returns every output value (multi-output ops).
    pub fn node_outputs(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|&v| self.graph.values[v].shape.as_slice()).collect();
        let err = |reason| EngineError::Shape { node: name.to_string(), op: op.name().to_string(), reason };
        let shape = op.output_shape(&shapes).map_err(err)?;
        let extra = op.extra_outputs(&shapes).map_err(err)?;
        let dtypes: Vec<DType> = inputs.iter().map(|&v| self.graph.values[v].dtype).collect();
        let dtype = op.output_dtype(&dtypes);
        let mut outputs = vec![self.push_value(name, shape, dtype, ValueKind::Activation)];
        for (k, (shape, dtype)) in extra.into_iter().enumerate() {
            outputs.push(self.push_value(&format!("{name}:{}", k + 1), shape, dtype, ValueKind::Activation));
        }
        self.graph.nodes.push(Node { name: name.to_string(), op, inputs: inputs.to_vec(), outputs: outputs.clone() });
        Ok(outputs)
    }

    /// Marks a value as a graph output.
    pub fn output(&mut self, v: ValueId) {
        self.graph.outputs.push(v);
    }

    /// Finishes the graph, laying out the parameters' initial values (trainable tensors first, so
    /// an optimizer updates one contiguous prefix of the flat buffer).
    pub fn finish(mut self) -> Graph {
        self.graph.layout.assign_offsets();
        let mut flat = vec![0.0f32; self.graph.layout.total_len()];
        for (slot, data) in self.graph.layout.slots.iter().zip(&self.param_data) {
            flat[slot.offset..slot.offset + data.len()].copy_from_slice(data);
        }
        self.graph.initial_params = flat;
        self.graph
    }
}
