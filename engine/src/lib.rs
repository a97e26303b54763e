//! distk-engine: the IR of a model (static shapes), its parameter layout, and the executors that run it:
//! WGSL compute shaders through wgpu on any adapter, and a CPU reference executor.
//!
//! The engine knows nothing of ONNX, files or networks: an importer builds a [`Graph`] with a
//! [`GraphBuilder`], and an [`Executor`] runs it for one fixed batch size.

pub mod autodiff;
pub mod cpu;
pub mod error;
pub mod executor;
pub mod graph;
pub mod layout;
pub mod ops;
pub mod optimizer;
pub mod plan;
pub mod shape;
pub mod training_rewrite;
pub mod wgpu_exec;
pub mod window;

pub use error::{EngineError, Result};
pub use executor::{Executor, OptimizerState};
pub use graph::{Graph, GraphBuilder, Node, ValueId, ValueInfo, ValueKind};
pub use layout::{PARAM_ALIGN_BYTES, ParamLayout, ParamSlot};
pub use ops::{
    Accuracy, BatchNorm, BinaryOp, Broadcast, Concat, ConvAttrs, ConvGradInput, ConvGradWeight, Dropout, DropoutMask,
    Loss, LossGrad, LossKind, MatMul, Op, OpDef, PoolAttrs, PoolGrad, PoolKind, Reduce, ReduceOp, Reshape, Slice,
    Softmax, SoftmaxGrad, Transpose, UnaryGrad, UnaryOp,
};
