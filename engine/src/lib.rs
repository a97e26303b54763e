//! distk-engine: the IR of a model (static shapes), its parameter layout, and the executors that run it:
//! WGSL compute shaders through wgpu on any adapter, and a CPU reference executor.
//!
//! The engine knows nothing of ONNX, files or networks: an importer builds a [`Graph`] with a
//! [`GraphBuilder`], and an [`Executor`] runs it for one fixed batch size.

pub mod autodiff;
pub mod cpu;
pub mod dtype;
pub mod error;
pub mod executor;
pub mod graph;
pub mod layout;
pub mod memory;
pub mod ops;
pub mod optimizer;
pub mod plan;
pub mod shape;
pub mod training_rewrite;
pub mod wgpu_exec;
pub mod window;

pub use dtype::{DType, TensorRef};
pub use error::{EngineError, Result};
pub use executor::{Executor, OptimizerState};
pub use graph::{Graph, GraphBuilder, Node, ValueId, ValueInfo, ValueKind};
pub use layout::{PARAM_ALIGN_BYTES, ParamLayout, ParamSlot};
pub use ops::{
    Accuracy, ArgReduce, BatchNorm, BinaryOp, Broadcast, Cast, Concat, ConvAttrs, ConvGradInput, ConvGradWeight,
    Dropout, DropoutMask, Gather, GatherElements, GatherGrad, GatherNd, GruCell, GruCellGrad, Loss, LossGrad, LossKind,
    LstmCell, LstmCellGrad, MatMul, OneHot, Op, OpDef, PoolArgMax, PoolAttrs, PoolGrad, PoolKind, Reduce, ReduceOp,
    Reduction, Reshape, ScatterElements, ScatterNd, Slice, Softmax, SoftmaxGrad, TopK, Transpose, UnaryGrad, UnaryOp,
    Where,
};
