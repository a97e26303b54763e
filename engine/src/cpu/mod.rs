//! The CPU executor: runs the IR with plain loops and a BLAS-class gemm. It is the reference every
//! WGSL kernel is tested against, and the fast path where there is no GPU.

pub mod gemm;
pub mod im2col;
pub mod kernels;
pub mod real;
pub mod sum;

use crate::cpu::real::Real;
use crate::error::{EngineError, Result};
use crate::executor::{Executor, OptimizerState, initial_optimizer_state};
use crate::graph::{Graph, ValueKind};
use crate::ops::CpuArgs;
use crate::shape::numel;

/// Runs a [`Graph`] on the CPU, in f32 (the engine's type) or f64 (`CpuExecutor<f64>`, for
/// finite-difference checks).
pub struct CpuExecutor<T: Real = f32> {
    graph: Graph,
    params: Vec<T>,
    values: Vec<Vec<T>>,
    grads: Vec<T>,
    opt_step: u64,
    opt_slots: Vec<T>,
}

fn to_real<T: Real>(v: &[f32]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}

impl<T: Real> CpuExecutor<T> {
    /// Prepares the graph; buffers for activations are allocated once.
    pub fn new(graph: Graph) -> Self {
        let values = graph
            .values
            .iter()
            .map(|v| match &v.kind {
                ValueKind::Activation | ValueKind::Input => vec![T::zero(); numel(&v.shape)],
                ValueKind::Constant(c) => to_real(c),
                ValueKind::Param { .. } => Vec::new(),
            })
            .collect();
        let params = to_real(&graph.initial_params);
        let grads = vec![T::zero(); graph.layout.trainable_len()];
        let opt_slots = to_real(&initial_optimizer_state(&graph).slots);
        CpuExecutor { graph, params, values, grads, opt_step: 0, opt_slots }
    }

    fn data(&self, v: usize) -> &[T] {
        match &self.graph.values[v].kind {
            ValueKind::Param { slot } => {
                let s = &self.graph.layout.slots[*slot];
                &self.params[s.offset..s.offset + s.len]
            }
            _ => &self.values[v],
        }
    }

    /// Runs the graph (and the optimizer and state updates of a training graph) on inputs of this
    /// executor's element type.
    pub fn run_real(&mut self, inputs: &[&[T]]) -> Result<Vec<Vec<T>>> {
        if inputs.len() != self.graph.inputs.len() {
            return Err(EngineError::BadInput(format!(
                "the graph takes {} inputs, {} given",
                self.graph.inputs.len(),
                inputs.len()
            )));
        }
        for (i, data) in inputs.iter().enumerate() {
            let v = self.graph.inputs[i];
            if data.len() != self.values[v].len() {
                return Err(EngineError::BadInput(format!(
                    "input `{}` has shape {:?} ({} values), {} given",
                    self.graph.values[v].name,
                    self.graph.shape(v),
                    self.values[v].len(),
                    data.len()
                )));
            }
            let info = &self.graph.values[v];
            crate::dtype::check_values(|| format!("input `{}`", info.name), info.dtype, data)?;
            self.values[v].copy_from_slice(data);
        }
        for i in 0..self.graph.nodes.len() {
            let n = &self.graph.nodes[i];
            if let [o] = n.outputs[..] {
                let mut out = std::mem::take(&mut self.values[o]);
                self.eval(i, &mut out);
                self.values[o] = out;
            } else {
                let outs: Vec<usize> = n.outputs.clone();
                let mut bufs: Vec<Vec<T>> = outs.iter().map(|&o| std::mem::take(&mut self.values[o])).collect();
                self.eval_outputs(i, &mut bufs);
                for (&o, b) in outs.iter().zip(bufs) {
                    self.values[o] = b;
                }
            }
        }
        for &(slot, v) in &self.graph.state_updates {
            let s = &self.graph.layout.slots[slot];
            let (off, len) = (s.offset, s.len);
            let src = self.data(v).to_vec();
            self.params[off..off + len].copy_from_slice(&src);
        }
        if let Some(optimizer) = self.graph.optimizer {
            for &(slot, v) in &self.graph.param_grads {
                let s = &self.graph.layout.slots[slot];
                self.grads[s.offset..s.offset + s.len].copy_from_slice(&self.values[v]);
            }
            let n = self.grads.len();
            self.opt_step += 1;
            optimizer.update(&mut self.params[..n], &self.grads, &mut self.opt_slots, self.opt_step);
        }
        Ok(self.graph.outputs.iter().map(|&o| self.data(o).to_vec()).collect())
    }

    /// The flat parameter buffer.
    pub fn params_real(&self) -> &[T] {
        &self.params
    }

    /// Replaces the flat parameter buffer.
    pub fn set_params_real(&mut self, p: &[T]) -> Result<()> {
        if p.len() != self.params.len() {
            return Err(EngineError::BadInput(format!(
                "parameter buffer has {} values, {} given",
                self.params.len(),
                p.len()
            )));
        }
        self.params.copy_from_slice(p);
        Ok(())
    }

    fn eval(&self, node: usize, out: &mut [T]) {
        let n = &self.graph.nodes[node];
        let inputs: Vec<&[T]> = n.inputs.iter().map(|&v| self.data(v)).collect();
        let shapes: Vec<&[usize]> = n.inputs.iter().map(|&v| self.graph.shape(v)).collect();
        let args = CpuArgs { inputs: &inputs, shapes: &shapes, out_shape: self.graph.shape(n.output()) };
        n.op.eval(&args, out);
    }

    fn eval_outputs(&self, node: usize, bufs: &mut [Vec<T>]) {
        let n = &self.graph.nodes[node];
        let inputs: Vec<&[T]> = n.inputs.iter().map(|&v| self.data(v)).collect();
        let shapes: Vec<&[usize]> = n.inputs.iter().map(|&v| self.graph.shape(v)).collect();
        let args = CpuArgs { inputs: &inputs, shapes: &shapes, out_shape: self.graph.shape(n.output()) };
        let mut outs: Vec<&mut [T]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
        n.op.eval_outputs(&args, &mut outs);
    }
}

impl Executor for CpuExecutor<f32> {
    fn run(&mut self, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        self.run_real(inputs)
    }

    fn read_params(&mut self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.params.len() {
            return Err(EngineError::BadInput(format!(
                "parameter buffer has {} values, {} asked",
                self.params.len(),
                out.len()
            )));
        }
        out.copy_from_slice(&self.params);
        Ok(())
    }

    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(EngineError::BadInput(format!(
                "parameter buffer has {} values, {} given",
                self.params.len(),
                params.len()
            )));
        }
        self.params.copy_from_slice(params);
        Ok(())
    }

    fn graph(&self) -> &Graph {
        &self.graph
    }

    fn describe(&self) -> String {
        "cpu (matrixmultiply sgemm)".to_string()
    }

    fn optimizer_state(&mut self) -> Result<OptimizerState> {
        Ok(OptimizerState { step: self.opt_step, slots: self.opt_slots.clone() })
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        if state.slots.len() != self.opt_slots.len() {
            return Err(EngineError::BadInput(format!(
                "optimizer state has {} values, this optimizer keeps {}",
                state.slots.len(),
                self.opt_slots.len()
            )));
        }
        self.opt_slots.copy_from_slice(&state.slots);
        self.opt_step = state.step;
        Ok(())
    }
}
