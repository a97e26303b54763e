//! The ops of the IR, one file per op family. Each op is a type implementing [`OpDef`]: its
//! attributes (with the equation in the doc comment), its shape rule, its CPU evaluation (generic
//! over f32/f64), its vector-Jacobian product, its WGSL lowering, and its test cases. The one
//! registration below generates the [`Op`] enum and the forwarding of every method to the op
//! types, so an op that lacks a piece does not compile. The executors keep only their mechanics
//! (buffers, dispatch, pipelines); the test runners iterate over [`Op::all_cases`].
//!
//! Adding an op: a file here with its type and `impl OpDef`, its shader under `shaders/` when it
//! needs one, and one line in `register_ops!` (`docs/adding-an-op.md`).

pub mod arg_reduce;
pub mod batch_norm;
pub mod binary;
pub mod broadcast;
pub mod cases;
pub mod cast;
pub mod concat;
pub mod conv;
pub mod conv_grad;
pub mod dropout;
pub mod gather;
pub mod gather_elements;
pub mod gather_nd;
pub mod gru_cell;
pub mod index;
pub mod loss;
pub mod loss_reference;
pub mod lstm_cell;
pub mod matmul;
pub mod one_hot;
pub mod pool;
pub mod pool_argmax;
pub mod reduce;
pub mod reshape;
pub mod scatter_elements;
pub mod scatter_nd;
pub mod slice;
pub mod softmax;
pub mod top_k;
pub mod transpose;
pub mod unary;
pub mod vjp;
pub mod where_op;

use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};

pub use arg_reduce::ArgReduce;
pub use batch_norm::BatchNorm;
pub use binary::BinaryOp;
pub use broadcast::Broadcast;
pub use cases::{CaseData, CaseInput, CaseRng, OpCase};
pub use cast::Cast;
pub use concat::Concat;
pub use conv::ConvAttrs;
pub use conv_grad::{ConvGradInput, ConvGradWeight};
pub use dropout::{Dropout, DropoutMask, dropout_keep};
pub use gather::{Gather, GatherGrad};
pub use gather_elements::GatherElements;
pub use gather_nd::GatherNd;
pub use gru_cell::{GruCell, GruCellGrad};
pub use index::Reduction;
pub use loss::{Accuracy, Loss, LossGrad, LossKind};
pub use lstm_cell::{LstmCell, LstmCellGrad};
pub use matmul::{MatMul, MatMulDims};
pub use one_hot::OneHot;
pub use pool::{PoolAttrs, PoolGrad, PoolKind, window_output};
pub use pool_argmax::PoolArgMax;
pub use reduce::{Reduce, ReduceOp};
pub use reshape::Reshape;
pub use scatter_elements::ScatterElements;
pub use scatter_nd::ScatterNd;
pub use slice::Slice;
pub use softmax::{Softmax, SoftmaxGrad};
pub use top_k::TopK;
pub use transpose::Transpose;
pub use unary::{UnaryGrad, UnaryOp, sigmoid, softplus};
pub use vjp::VjpCtx;
pub use where_op::Where;

/// The inputs of one node as the CPU executor hands them to [`OpDef::eval`].
pub struct CpuArgs<'a, T> {
    /// Each input's data, contiguous in its shape.
    pub inputs: &'a [&'a [T]],
    /// Each input's shape.
    pub shapes: &'a [&'a [usize]],
    /// The output's shape.
    pub out_shape: &'a [usize],
}

impl<T> CpuArgs<'_, T> {
    /// Input `i`'s data.
    pub fn x(&self, i: usize) -> &[T] {
        self.inputs[i]
    }

    /// Input `i`'s shape.
    pub fn s(&self, i: usize) -> &[usize] {
        self.shapes[i]
    }
}

/// What every op of the IR defines. All methods but [`OpDef::scratch_len`] are required, so a
/// registered op without a CPU reference, a gradient rule, a lowering or test cases is a compile
/// error.
pub trait OpDef: Clone + std::fmt::Debug + PartialEq + Into<Op> {
    /// A short name for messages.
    fn name(&self) -> &'static str;

    /// The output shape for the given input shapes, or why they do not fit (arity included).
    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String>;

    /// The element type of the (first) output given the inputs' (default: the first input's;
    /// float32 for an op without inputs).
    fn output_dtype(&self, inputs: &[DType]) -> DType {
        inputs.first().copied().unwrap_or_default()
    }

    /// The shapes and element types of the outputs after the first (multi-output ops only).
    fn extra_outputs(&self, _inputs: &[&[usize]]) -> std::result::Result<Vec<(Vec<usize>, DType)>, String> {
        Ok(Vec::new())
    }

    /// The CPU reference: computes `out` (the output's length) from the inputs. Shapes were
    /// validated by [`OpDef::output_shape`] when the node was built.
    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]);

    /// The CPU reference of every output (`outs[k]` output `k`); multi-output ops override it.
    fn eval_outputs<T: Real>(&self, args: &CpuArgs<'_, T>, outs: &mut [&mut [T]]) {
        self.eval(args, &mut *outs[0])
    }

    /// The gradient of each input given the gradient of the output (`None`: no gradient flows
    /// there). Ops that are themselves gradients return an error naming themselves.
    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>>;

    /// The WGSL dispatches computing the node at the planned locations.
    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>>;

    /// Temporary elements the WGSL lowering needs (an im2col buffer, partial sums).
    fn scratch_len(&self, _inputs: &[&[usize]], _output: &[usize]) -> usize {
        0
    }

    /// Cases the registry-driven tests run: WGSL against the CPU reference on random shapes, and
    /// f64 finite differences of the gradient for the cases marked so.
    fn cases(rng: &mut CaseRng) -> Vec<OpCase>;
}

macro_rules! register_ops {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// An operation of the IR. Inputs and outputs are listed on the node; most ops have one
        /// output, multi-output ops declare the others in [`OpDef::extra_outputs`].
        #[derive(Clone, Debug, PartialEq)]
        pub enum Op {
            $($(#[$doc])* $variant($ty),)*
        }

        $(impl From<$ty> for Op {
            fn from(op: $ty) -> Op {
                Op::$variant(op)
            }
        })*

        impl Op {
            /// The variant names of every registered op (what the registry tests iterate).
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($variant)),*];

            /// The variant name of this op (one of [`Op::VARIANTS`]).
            pub fn variant(&self) -> &'static str {
                match self { $(Op::$variant(_) => stringify!($variant),)* }
            }

            /// A short name for messages.
            pub fn name(&self) -> &'static str {
                match self { $(Op::$variant(op) => op.name(),)* }
            }

            /// The output shape for the given input shapes, or why they do not fit.
            pub fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
                match self { $(Op::$variant(op) => op.output_shape(inputs),)* }
            }

            /// The element type of the first output.
            pub fn output_dtype(&self, inputs: &[DType]) -> DType {
                match self { $(Op::$variant(op) => op.output_dtype(inputs),)* }
            }

            /// The outputs after the first.
            pub fn extra_outputs(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<(Vec<usize>, DType)>, String> {
                match self { $(Op::$variant(op) => op.extra_outputs(inputs),)* }
            }

            /// The CPU reference evaluation of the first output.
            pub fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
                match self { $(Op::$variant(op) => op.eval(args, out),)* }
            }

            /// The CPU reference evaluation of every output.
            pub fn eval_outputs<T: Real>(&self, args: &CpuArgs<'_, T>, outs: &mut [&mut [T]]) {
                match self { $(Op::$variant(op) => op.eval_outputs(args, outs),)* }
            }

            /// The gradients of the inputs.
            pub fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
                match self { $(Op::$variant(op) => op.vjp(cx),)* }
            }

            /// The WGSL dispatches.
            pub fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
                match self { $(Op::$variant(op) => op.lower(cx),)* }
            }

            /// Temporary elements the WGSL lowering needs.
            pub fn scratch_len(&self, inputs: &[&[usize]], output: &[usize]) -> usize {
                match self { $(Op::$variant(op) => op.scratch_len(inputs, output),)* }
            }

            /// The test cases of every registered op.
            pub fn all_cases(rng: &mut CaseRng) -> Vec<OpCase> {
                let mut out = Vec::new();
                $(out.extend(<$ty as OpDef>::cases(rng));)*
                out
            }
        }
    };
}

register_ops! {
    /// `alpha * op(A) @ op(B)`; inputs A, B.
    MatMul(MatMul),
    /// An elementwise function; input x.
    Unary(UnaryOp),
    /// An elementwise function of two broadcast tensors; inputs a, b.
    Binary(BinaryOp),
    /// Softmax or log-softmax along one axis; input x.
    Softmax(Softmax),
    /// N-d convolution; inputs x, w, optional bias.
    Conv(ConvAttrs),
    /// N-d pooling; input x.
    Pool(pool::PoolAttrs),
    /// Inference-form batch normalisation; inputs x, scale, bias, mean, var.
    BatchNorm(BatchNorm),
    /// Dropout (identity in inference); input x.
    Dropout(Dropout),
    /// A dropout mask from a seed; input seed [1].
    DropoutMask(DropoutMask),
    /// Same data, new shape; input x.
    Reshape(Reshape),
    /// Permuted dims; input x.
    Transpose(Transpose),
    /// Inputs joined along an axis.
    Concat(Concat),
    /// Sum or mean over axes; input x.
    Reduce(Reduce),
    /// Numpy broadcast to a shape; input x.
    Broadcast(Broadcast),
    /// A contiguous range along one axis; input x.
    Slice(Slice),
    /// Gradient of a unary function; inputs x, dy.
    UnaryGrad(UnaryGrad),
    /// Gradient of softmax; inputs y, dy.
    SoftmaxGrad(SoftmaxGrad),
    /// Gradient of a convolution with respect to its input; inputs dy, w.
    ConvGradInput(ConvGradInput),
    /// Gradient of a convolution with respect to its weight; inputs x, dy.
    ConvGradWeight(ConvGradWeight),
    /// Gradient of pooling; inputs x, dy.
    PoolGrad(PoolGrad),
    /// Weighted mean loss, shape [1]; inputs prediction, target, row weights.
    Loss(Loss),
    /// Gradient of the loss with respect to the prediction.
    LossGrad(LossGrad),
    /// Weighted accuracy, shape [1].
    Accuracy(Accuracy),
    /// Conversion to another element type; input x.
    Cast(Cast),
    /// `c ? x : y`, broadcast; inputs c, x, y.
    Where(Where),
    /// Entries along an axis at run-time indices; inputs data, indices.
    Gather(Gather),
    /// Gradient of Gather (a scatter-add); inputs indices, dy.
    GatherGrad(GatherGrad),
    /// Elementwise gather along an axis; inputs data, indices.
    GatherElements(GatherElements),
    /// Elementwise scatter along an axis; inputs data, indices, updates.
    ScatterElements(ScatterElements),
    /// Slices at index tuples; inputs data, indices.
    GatherNd(GatherNd),
    /// Slices at index tuples replaced or combined; inputs data, indices, updates.
    ScatterNd(ScatterNd),
    /// One-hot expansion; inputs indices, values [off, on].
    OneHot(OneHot),
    /// ArgMax or ArgMin along an axis; input x.
    ArgReduce(ArgReduce),
    /// The k largest or smallest entries and their positions (two outputs); input x.
    /// The GRU cell's elementwise step (linear_before_reset); inputs x and hr [N, 3H], h_prev [N, H].
    GruCell(GruCell),
    /// The gradient of [`GruCell`]; inputs x, hr, h_prev, dh; outputs dx, dhr, dh_prev.
    GruCellGrad(GruCellGrad),
    /// The LSTM cell's elementwise step; inputs gate pre-activations [N, 4H], c_prev [N, H];
    /// outputs h, c.
    LstmCell(LstmCell),
    /// The gradient of [`LstmCell`]; inputs pre-activations, c_prev, dh, dc; outputs d_pre, d_c_prev.
    LstmCellGrad(LstmCellGrad),
    TopK(TopK),
    /// The positions of max pooling's maxima; input x.
    PoolArgMax(PoolArgMax),
}

/// Checks that an op got between `lo` and `hi` inputs.
pub fn arity(inputs: &[&[usize]], lo: usize, hi: usize) -> std::result::Result<(), String> {
    if (lo..=hi).contains(&inputs.len()) {
        Ok(())
    } else if lo == hi {
        Err(format!("expects {lo} inputs, got {}", inputs.len()))
    } else {
        Err(format!("expects {lo} to {hi} inputs, got {}", inputs.len()))
    }
}

/// The error of an op that has no gradient rule of its own (the gradient ops).
pub fn no_gradient(cx: &VjpCtx<'_>, what: &str) -> crate::EngineError {
    crate::EngineError::Unsupported(format!("node `{}`: {what} has no gradient rule", cx.name))
}
