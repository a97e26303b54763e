//! What an op's vector-Jacobian product sees: the node, its output gradient, and a builder to add
//! the backward nodes to.

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::ops::{Op, Reduce, ReduceOp, Reshape};

/// The context of one node's gradient rule.
pub struct VjpCtx<'a> {
    /// The graph being extended with backward nodes.
    pub b: &'a mut GraphBuilder,
    /// The node's inputs.
    pub inputs: &'a [ValueId],
    /// The node's (first) output.
    pub output: ValueId,
    /// Every output of the node (multi-output ops).
    pub outputs: &'a [ValueId],
    /// The gradient of the output.
    pub dy: ValueId,
    /// The gradient of each output (`None` where none flows; the first is `dy`'s source).
    output_grads: &'a [Option<ValueId>],
    /// The node's name (backward nodes are named after it).
    pub name: &'a str,
    needs: &'a [bool],
    grad_name: String,
}

impl<'a> VjpCtx<'a> {
    /// A context for the node `name` computing `outputs` from `inputs`; `needs[v]` says whether
    /// value `v` needs a gradient.
    pub fn new(
        b: &'a mut GraphBuilder,
        name: &'a str,
        inputs: &'a [ValueId],
        outputs: &'a [ValueId],
        dy: ValueId,
        output_grads: &'a [Option<ValueId>],
        needs: &'a [bool],
    ) -> Self {
        VjpCtx {
            b,
            inputs,
            output: outputs[0],
            outputs,
            dy,
            output_grads,
            name,
            needs,
            grad_name: format!("{name}/grad"),
        }
    }

    /// The gradient of output `k` (multi-output ops), if any flows there.
    pub fn output_grad(&self, k: usize) -> Option<ValueId> {
        self.output_grads.get(k).copied().flatten()
    }

    /// Adds a multi-output backward node; returns its outputs.
    pub fn nodes(&mut self, op: impl Into<Op>, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        self.b.node_outputs(&self.grad_name, op.into(), inputs)
    }

    /// Whether input `i` needs a gradient.
    pub fn need(&self, i: usize) -> bool {
        self.needs[self.inputs[i]]
    }

    /// The shape of a value.
    pub fn shape(&self, v: ValueId) -> Vec<usize> {
        self.b.shape(v).to_vec()
    }

    /// Input `i`'s shape.
    pub fn input_shape(&self, i: usize) -> Vec<usize> {
        self.shape(self.inputs[i])
    }

    /// Adds a backward node.
    pub fn node(&mut self, op: impl Into<Op>, inputs: &[ValueId]) -> Result<ValueId> {
        self.b.node(&self.grad_name, op.into(), inputs)
    }

    /// Adds a constant.
    pub fn constant(&mut self, shape: Vec<usize>, data: Vec<f32>) -> Result<ValueId> {
        let name = format!("{}/const", self.grad_name);
        self.b.constant(&name, shape, data)
    }

    /// A constant of zeros of `shape` (what a scatter-shaped gradient starts from).
    pub fn zeros(&mut self, shape: Vec<usize>) -> Result<ValueId> {
        let n = crate::shape::numel(&shape);
        self.constant(shape, vec![0.0; n])
    }

    /// Sums `g` (shaped like the op's output) down to `shape` over broadcast dims.
    pub fn unbroadcast(&mut self, g: ValueId, shape: &[usize]) -> Result<ValueId> {
        let gs = self.shape(g);
        if gs == shape {
            return Ok(g);
        }
        let lead = gs.len() - shape.len();
        let axes: Vec<usize> = (0..gs.len()).filter(|&i| i < lead || (shape[i - lead] == 1 && gs[i] != 1)).collect();
        let name = format!("{}/unbroadcast", self.grad_name);
        let r = self.b.node(&name, Op::Reduce(Reduce { op: ReduceOp::Sum, axes, keepdims: true }), &[g])?;
        self.b.node(&format!("{name}_shape"), Op::Reshape(Reshape { shape: shape.to_vec() }), &[r])
    }
}
