//! The ops of the IR and their shape rules. Every op has exactly one output; its evaluation lives in
//! the executors (`cpu`, `wgpu_exec`), its typing here.

use crate::cpu::real::Real;
use crate::shape::{broadcast_shapes, numel};

/// Elementwise functions of one tensor. Parameters follow ONNX's attribute names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// max(x, 0)
    Relu,
    /// x if x >= 0 else alpha*x
    LeakyRelu { alpha: f32 },
    /// x if x > 0 else alpha*(exp(x)-1)
    Elu { alpha: f32 },
    /// gamma*(x if x > 0 else alpha*(exp(x)-1))
    Selu { alpha: f32, gamma: f32 },
    /// 1/(1+exp(-x))
    Sigmoid,
    /// clamp(alpha*x+beta, 0, 1)
    HardSigmoid { alpha: f32, beta: f32 },
    /// tanh(x)
    Tanh,
    /// log(1+exp(x))
    Softplus,
    /// exp(x)
    Exp,
    /// ln(x)
    Log,
    /// sqrt(x)
    Sqrt,
    /// -x
    Neg,
    /// |x|
    Abs,
    /// clamp(x, min, max)
    Clip { min: f32, max: f32 },
    /// x (a copy)
    Identity,
}

impl UnaryOp {
    /// Applies the function to one value (the CPU reference, in f32 or f64).
    pub fn apply<T: Real>(self, x: T) -> T {
        let (zero, one) = (T::zero(), T::one());
        match self {
            UnaryOp::Relu => x.max(zero),
            UnaryOp::LeakyRelu { alpha } => {
                if x >= zero {
                    x
                } else {
                    T::of(alpha) * x
                }
            }
            UnaryOp::Elu { alpha } => {
                if x > zero {
                    x
                } else {
                    T::of(alpha) * (x.exp() - one)
                }
            }
            UnaryOp::Selu { alpha, gamma } => {
                if x > zero {
                    T::of(gamma) * x
                } else {
                    T::of(gamma) * T::of(alpha) * (x.exp() - one)
                }
            }
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::HardSigmoid { alpha, beta } => (T::of(alpha) * x + T::of(beta)).max(zero).min(one),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Softplus => softplus(x),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Clip { min, max } => x.max(T::of(min)).min(T::of(max)),
            UnaryOp::Identity => x,
        }
    }

    /// The derivative of the function at `x` (the CPU reference of [`Op::UnaryGrad`]).
    pub fn derivative<T: Real>(self, x: T) -> T {
        let (zero, one) = (T::zero(), T::one());
        match self {
            UnaryOp::Relu => {
                if x > zero {
                    one
                } else {
                    zero
                }
            }
            UnaryOp::LeakyRelu { alpha } => {
                if x >= zero {
                    one
                } else {
                    T::of(alpha)
                }
            }
            UnaryOp::Elu { alpha } => {
                if x > zero {
                    one
                } else {
                    T::of(alpha) * x.exp()
                }
            }
            UnaryOp::Selu { alpha, gamma } => {
                if x > zero {
                    T::of(gamma)
                } else {
                    T::of(gamma) * T::of(alpha) * x.exp()
                }
            }
            UnaryOp::Sigmoid => {
                let s = sigmoid(x);
                s * (one - s)
            }
            UnaryOp::HardSigmoid { alpha, beta } => {
                let v = T::of(alpha) * x + T::of(beta);
                if v > zero && v < one { T::of(alpha) } else { zero }
            }
            UnaryOp::Tanh => {
                let t = x.tanh();
                one - t * t
            }
            UnaryOp::Softplus => sigmoid(x),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => one / x,
            UnaryOp::Sqrt => T::of(0.5) / x.sqrt(),
            UnaryOp::Neg => -one,
            UnaryOp::Abs => {
                if x > zero {
                    one
                } else if x < zero {
                    -one
                } else {
                    zero
                }
            }
            UnaryOp::Clip { min, max } => {
                if x >= T::of(min) && x <= T::of(max) {
                    one
                } else {
                    zero
                }
            }
            UnaryOp::Identity => one,
        }
    }
}

/// The dropout mask value of element `i` for `seed`: a PCG-style integer hash mapped to [0, 1),
/// identical in the CPU reference and the WGSL kernel.
pub fn dropout_keep(seed: u32, i: u32, rate: f32) -> f32 {
    let mut h = seed ^ i.wrapping_mul(0x9E37_79B9);
    h = h.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    h = ((h >> ((h >> 28) + 4)) ^ h).wrapping_mul(277_803_737);
    h = (h >> 22) ^ h;
    let u = (h >> 8) as f32 / 16_777_216.0;
    if u >= rate { 1.0 / (1.0 - rate) } else { 0.0 }
}

/// Numerically stable logistic function.
pub fn sigmoid<T: Real>(x: T) -> T {
    let one = T::one();
    if x >= T::zero() {
        one / (one + (-x).exp())
    } else {
        let e = x.exp();
        e / (one + e)
    }
}

/// Numerically stable log(1+exp(x)).
pub fn softplus<T: Real>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

/// Elementwise functions of two tensors, with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b
    Div,
    /// a ^ b
    Pow,
    /// The smaller of a and b.
    Min,
    /// The larger of a and b.
    Max,
}

impl BinaryOp {
    /// Applies the function to one pair (the CPU reference).
    pub fn apply<T: Real>(self, a: T, b: T) -> T {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Max => a.max(b),
        }
    }
}

/// Reductions over axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum of the elements.
    Sum,
    /// Arithmetic mean of the elements.
    Mean,
}

/// Convolution attributes, normalised: explicit pads, one entry per spatial dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAttrs {
    /// Kernel size per spatial dimension.
    pub kernel: Vec<usize>,
    /// Stride per spatial dimension.
    pub strides: Vec<usize>,
    /// Dilation per spatial dimension.
    pub dilations: Vec<usize>,
    /// Padding before each spatial dimension.
    pub pads_begin: Vec<usize>,
    /// Padding after each spatial dimension.
    pub pads_end: Vec<usize>,
    /// Number of groups (channels split into independent convolutions).
    pub group: usize,
}

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the window (padding never wins).
    Max,
    /// Mean over the window; `count_include_pad` counts padded positions in the divisor.
    Average { count_include_pad: bool },
}

/// Pooling attributes, normalised like [`ConvAttrs`].
#[derive(Clone, Debug, PartialEq)]
pub struct PoolAttrs {
    /// Max or average.
    pub kind: PoolKind,
    /// Window size per spatial dimension.
    pub kernel: Vec<usize>,
    /// Stride per spatial dimension.
    pub strides: Vec<usize>,
    /// Dilation per spatial dimension.
    pub dilations: Vec<usize>,
    /// Padding before each spatial dimension.
    pub pads_begin: Vec<usize>,
    /// Padding after each spatial dimension.
    pub pads_end: Vec<usize>,
    /// Output size rounds up instead of down (ONNX `ceil_mode`).
    pub ceil_mode: bool,
}

/// An operation of the IR. Inputs are listed on the node; every op has one output.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `alpha * op(A) @ op(B)` over the last two dims; leading (batch) dims broadcast.
    /// Inputs: A, B.
    MatMul {
        /// Use A transposed (its last two dims swapped).
        trans_a: bool,
        /// Use B transposed.
        trans_b: bool,
        /// Scale of the product.
        alpha: f32,
    },
    /// An elementwise function. Input: x.
    Unary(UnaryOp),
    /// An elementwise function of two broadcast tensors. Inputs: a, b.
    Binary(BinaryOp),
    /// Softmax (or log-softmax) along one axis. Input: x.
    Softmax {
        /// The axis normalised over.
        axis: usize,
        /// Log-softmax instead of softmax.
        log: bool,
    },
    /// N-d convolution, layout N,C,spatial... Inputs: x, w (M, C/group, kernel...), optional bias (M).
    Conv(ConvAttrs),
    /// N-d pooling, layout N,C,spatial... Input: x.
    Pool(PoolAttrs),
    /// Inference-form batch normalisation over axis 1. Inputs: x, scale, bias, mean, var.
    BatchNorm {
        /// Added to the variance.
        epsilon: f32,
        /// The running-statistics momentum the model declares (None: the trainer's default).
        momentum: Option<f32>,
    },
    /// Dropout: identity in inference; in training graphs it becomes `x * DropoutMask`. Input: x.
    Dropout {
        /// Fraction of elements zeroed in training.
        rate: f32,
    },
    /// A dropout mask: `(hash(seed, i) >= rate) / (1 - rate)` per element, the same on every executor.
    /// Input: seed [1] (a new value every step).
    DropoutMask {
        /// The mask's shape.
        shape: Vec<usize>,
        /// Fraction of zeros.
        rate: f32,
    },
    /// Same data, new shape (element count unchanged). Input: x.
    Reshape {
        /// The new shape.
        shape: Vec<usize>,
    },
    /// Permutes the dims: output dim i is input dim `perm[i]`. Input: x.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// Joins the inputs along an axis. Inputs: one or more tensors.
    Concat {
        /// The axis joined along.
        axis: usize,
    },
    /// Sum or mean over axes. Input: x.
    Reduce {
        /// Sum or mean.
        op: ReduceOp,
        /// The axes reduced (sorted, unique).
        axes: Vec<usize>,
        /// Keep reduced dims as size 1.
        keepdims: bool,
    },
    /// Numpy broadcast of x to `shape`. Input: x.
    Broadcast {
        /// The target shape.
        shape: Vec<usize>,
    },
    /// `len` entries of x along `axis` from `start`. Input: x.
    Slice {
        /// The axis.
        axis: usize,
        /// First index.
        start: usize,
        /// Entries kept.
        len: usize,
    },
    /// Gradient of a unary function. Inputs: x (the function's input), dy.
    UnaryGrad(UnaryOp),
    /// Gradient of softmax / log-softmax. Inputs: y (the forward output), dy.
    SoftmaxGrad {
        /// The axis.
        axis: usize,
        /// Log-softmax.
        log: bool,
    },
    /// Gradient of a convolution with respect to its input. Inputs: dy, w.
    ConvGradInput {
        /// The forward convolution.
        attrs: ConvAttrs,
        /// The forward input's shape.
        input_shape: Vec<usize>,
    },
    /// Gradient of a convolution with respect to its weight. Inputs: x, dy.
    ConvGradWeight {
        /// The forward convolution.
        attrs: ConvAttrs,
        /// The weight's shape.
        weight_shape: Vec<usize>,
    },
    /// Gradient of pooling. Inputs: x, dy.
    PoolGrad(PoolAttrs),
    /// Weighted mean loss over rows: `sum_i w_i l_i / sum_i w_i`, shape [1].
    /// Inputs: prediction (logits for the fused kinds), target, row weights [N].
    Loss(LossKind),
    /// Gradient of [`Op::Loss`] with respect to the prediction. Inputs as for `Loss`.
    LossGrad(LossKind),
    /// Weighted accuracy over rows, shape [1]. Inputs as for `Loss`.
    Accuracy(LossKind),
}

/// The training losses (Keras names), each in the form the engine computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Integer labels (as f32, shape [N]) against logits: softmax fused, log-sum-exp.
    SparseCategoricalLogits,
    /// Integer labels against probabilities: `-log(clip(p, 1e-7, 1 - 1e-7))`.
    SparseCategoricalProbs,
    /// One-hot (or soft) targets [N, C] against logits.
    CategoricalLogits,
    /// One-hot targets against probabilities (clipped, and normalised as Keras does).
    CategoricalProbs,
    /// Binary targets against logits: sigmoid fused; mean over the last axis.
    BinaryLogits,
    /// Binary targets against probabilities (clipped); mean over the last axis.
    BinaryProbs,
    /// Mean squared error over the last axis.
    MeanSquaredError,
    /// Mean absolute error over the last axis.
    MeanAbsoluteError,
}

impl LossKind {
    /// Whether targets are class indices ([N]) rather than a tensor shaped like the prediction.
    pub fn sparse_targets(self) -> bool {
        matches!(self, LossKind::SparseCategoricalLogits | LossKind::SparseCategoricalProbs)
    }

    /// Whether the prediction input is the logits (the output activation fused into the loss).
    pub fn on_logits(self) -> bool {
        matches!(self, LossKind::SparseCategoricalLogits | LossKind::CategoricalLogits | LossKind::BinaryLogits)
    }
}

impl Op {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::MatMul { .. } => "MatMul",
            Op::Unary(_) => "Unary",
            Op::Binary(_) => "Binary",
            Op::Softmax { log: false, .. } => "Softmax",
            Op::Softmax { log: true, .. } => "LogSoftmax",
            Op::Conv(_) => "Conv",
            Op::Pool(_) => "Pool",
            Op::BatchNorm { .. } => "BatchNorm",
            Op::Dropout { .. } => "Dropout",
            Op::DropoutMask { .. } => "DropoutMask",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Concat { .. } => "Concat",
            Op::Reduce { .. } => "Reduce",
            Op::Broadcast { .. } => "Broadcast",
            Op::Slice { .. } => "Slice",
            Op::UnaryGrad(_) => "UnaryGrad",
            Op::SoftmaxGrad { .. } => "SoftmaxGrad",
            Op::ConvGradInput { .. } => "ConvGradInput",
            Op::ConvGradWeight { .. } => "ConvGradWeight",
            Op::PoolGrad(_) => "PoolGrad",
            Op::Loss(_) => "Loss",
            Op::LossGrad(_) => "LossGrad",
            Op::Accuracy(_) => "Accuracy",
        }
    }

    /// The output shape for the given input shapes, or why they do not fit.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let want = |n: std::ops::RangeInclusive<usize>| -> Result<(), String> {
            if n.contains(&inputs.len()) { Ok(()) } else { Err(format!("expects {n:?} inputs, got {}", inputs.len())) }
        };
        match self {
            Op::MatMul { trans_a, trans_b, .. } => {
                want(2..=2)?;
                let info = MatMulDims::new(inputs[0], inputs[1], *trans_a, *trans_b)?;
                let mut out = info.batch.clone();
                out.extend([info.m, info.n]);
                Ok(out)
            }
            Op::Unary(_) => {
                want(1..=1)?;
                Ok(inputs[0].to_vec())
            }
            Op::Binary(_) => {
                want(2..=2)?;
                broadcast_shapes(inputs[0], inputs[1])
                    .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", inputs[0], inputs[1]))
            }
            Op::Softmax { axis, .. } => {
                want(1..=1)?;
                if *axis >= inputs[0].len() {
                    return Err(format!("axis {axis} out of range for shape {:?}", inputs[0]));
                }
                Ok(inputs[0].to_vec())
            }
            Op::Conv(a) => {
                want(2..=3)?;
                conv_output_shape(a, inputs)
            }
            Op::Pool(p) => {
                want(1..=1)?;
                let x = inputs[0];
                let nd = p.kernel.len();
                if x.len() != nd + 2 {
                    return Err(format!("input rank {} does not fit a {nd}-d window", x.len()));
                }
                let mut out = vec![x[0], x[1]];
                for i in 0..nd {
                    let mut o = window_output(
                        x[i + 2],
                        p.kernel[i],
                        p.strides[i],
                        p.dilations[i],
                        p.pads_begin[i] + p.pads_end[i],
                        p.ceil_mode,
                    )?;
                    // As ONNX and PyTorch do, ceil_mode drops a last window that starts in the end padding.
                    if p.ceil_mode && o > 1 && (o - 1) * p.strides[i] >= x[i + 2] + p.pads_begin[i] {
                        o -= 1;
                    }
                    out.push(o);
                }
                Ok(out)
            }
            Op::BatchNorm { .. } => {
                want(5..=5)?;
                let x = inputs[0];
                if x.len() < 2 {
                    return Err(format!("input shape {x:?} has no channel axis"));
                }
                for s in &inputs[1..] {
                    if numel(s) != x[1] {
                        return Err(format!("per-channel tensor of shape {s:?} does not match {} channels", x[1]));
                    }
                }
                Ok(x.to_vec())
            }
            Op::Reshape { shape } => {
                want(1..=1)?;
                if numel(shape) != numel(inputs[0]) {
                    return Err(format!("cannot reshape {:?} to {shape:?}", inputs[0]));
                }
                Ok(shape.clone())
            }
            Op::Transpose { perm } => {
                want(1..=1)?;
                let x = inputs[0];
                let mut seen = vec![false; x.len()];
                if perm.len() != x.len() || perm.iter().any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true))
                {
                    return Err(format!("perm {perm:?} is not a permutation of {} dims", x.len()));
                }
                Ok(perm.iter().map(|&p| x[p]).collect())
            }
            Op::Concat { axis } => {
                if inputs.is_empty() {
                    return Err("expects at least one input".into());
                }
                let first = inputs[0];
                if *axis >= first.len() {
                    return Err(format!("axis {axis} out of range for shape {first:?}"));
                }
                let mut out = first.to_vec();
                out[*axis] = 0;
                for s in inputs {
                    if s.len() != first.len() || (0..s.len()).any(|i| i != *axis && s[i] != first[i]) {
                        return Err(format!("shapes {first:?} and {s:?} differ off axis {axis}"));
                    }
                    out[*axis] += s[*axis];
                }
                Ok(out)
            }
            Op::Reduce { axes, keepdims, .. } => {
                want(1..=1)?;
                let x = inputs[0];
                if axes.iter().any(|&a| a >= x.len()) {
                    return Err(format!("axes {axes:?} out of range for shape {x:?}"));
                }
                Ok(x.iter()
                    .enumerate()
                    .filter_map(|(i, &d)| if axes.contains(&i) { keepdims.then_some(1) } else { Some(d) })
                    .collect())
            }
            Op::Dropout { rate } => {
                want(1..=1)?;
                if !(0.0..1.0).contains(rate) {
                    return Err(format!("dropout rate {rate} is not in [0, 1)"));
                }
                Ok(inputs[0].to_vec())
            }
            Op::DropoutMask { shape, rate } => {
                want(1..=1)?;
                if !(0.0..1.0).contains(rate) {
                    return Err(format!("dropout rate {rate} is not in [0, 1)"));
                }
                Ok(shape.clone())
            }
            Op::Broadcast { shape } => {
                want(1..=1)?;
                match broadcast_shapes(inputs[0], shape) {
                    Some(s) if &s == shape => Ok(shape.clone()),
                    _ => Err(format!("{:?} does not broadcast to {shape:?}", inputs[0])),
                }
            }
            Op::Slice { axis, start, len } => {
                want(1..=1)?;
                let x = inputs[0];
                if *axis >= x.len() || start + len > x[*axis] {
                    return Err(format!("slice {start}..{} of axis {axis} out of range for {x:?}", start + len));
                }
                let mut out = x.to_vec();
                out[*axis] = *len;
                Ok(out)
            }
            Op::UnaryGrad(_) | Op::SoftmaxGrad { .. } => {
                want(2..=2)?;
                if inputs[0] != inputs[1] {
                    return Err(format!("shapes {:?} and {:?} differ", inputs[0], inputs[1]));
                }
                Ok(inputs[0].to_vec())
            }
            Op::ConvGradInput { input_shape, .. } => {
                want(2..=2)?;
                Ok(input_shape.clone())
            }
            Op::ConvGradWeight { weight_shape, .. } => {
                want(2..=2)?;
                Ok(weight_shape.clone())
            }
            Op::PoolGrad(_) => {
                want(2..=2)?;
                Ok(inputs[0].to_vec())
            }
            Op::Loss(kind) | Op::LossGrad(kind) | Op::Accuracy(kind) => {
                want(3..=3)?;
                let (p, t, w) = (inputs[0], inputs[1], inputs[2]);
                if p.is_empty() || numel(w) != p[0] {
                    return Err(format!("prediction {p:?} and row weights {w:?} disagree on rows"));
                }
                let target_ok =
                    if kind.sparse_targets() { numel(t) == p[0] && p.len() == 2 } else { numel(t) == numel(p) };
                if !target_ok {
                    return Err(format!("targets {t:?} do not fit predictions {p:?} for {kind:?}"));
                }
                Ok(if matches!(self, Op::LossGrad(_)) { p.to_vec() } else { vec![1] })
            }
        }
    }
}

/// Output length of a sliding window along one dimension.
pub fn window_output(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: usize,
    ceil_mode: bool,
) -> Result<usize, String> {
    let span = dilation * (kernel.max(1) - 1) + 1;
    let padded = input + pads;
    if padded < span || stride == 0 {
        return Err(format!("window {kernel} (dilation {dilation}) does not fit input {input} with padding {pads}"));
    }
    let steps = padded - span;
    Ok(if ceil_mode { steps.div_ceil(stride) + 1 } else { steps / stride + 1 })
}

fn conv_output_shape(a: &ConvAttrs, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
    let (x, w) = (inputs[0], inputs[1]);
    let nd = a.kernel.len();
    if x.len() != nd + 2 || w.len() != nd + 2 {
        return Err(format!("input {x:?} and weight {w:?} do not fit a {nd}-d convolution"));
    }
    if a.group == 0 || x[1] % a.group != 0 || w[0] % a.group != 0 || w[1] * a.group != x[1] {
        return Err(format!("channels: input {x:?}, weight {w:?}, group {}", a.group));
    }
    if w[2..] != a.kernel[..] {
        return Err(format!("weight {w:?} does not match kernel {:?}", a.kernel));
    }
    if let Some(b) = inputs.get(2)
        && numel(b) != w[0]
    {
        return Err(format!("bias {b:?} does not match {} output channels", w[0]));
    }
    let mut out = vec![x[0], w[0]];
    for i in 0..nd {
        out.push(window_output(
            x[i + 2],
            a.kernel[i],
            a.strides[i],
            a.dilations[i],
            a.pads_begin[i] + a.pads_end[i],
            false,
        )?);
    }
    Ok(out)
}

/// The sizes of a (batched) matrix product, with the strides each operand is read with.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulDims {
    /// Output batch dims (the broadcast of both operands' leading dims).
    pub batch: Vec<usize>,
    /// Rows of the product.
    pub m: usize,
    /// Columns of the product.
    pub n: usize,
    /// The contracted size.
    pub k: usize,
    /// Per flattened batch index, the element step of A (0 when A is broadcast).
    pub a_batch_stride: usize,
    /// Per flattened batch index, the element step of B (0 when B is broadcast).
    pub b_batch_stride: usize,
    /// Row and column strides of op(A) (so a transposed A costs nothing).
    pub a_rs: usize,
    /// See `a_rs`.
    pub a_cs: usize,
    /// Row and column strides of op(B).
    pub b_rs: usize,
    /// See `b_rs`.
    pub b_cs: usize,
}

impl MatMulDims {
    /// Derives the product's sizes. Batch dims must be either equal, or absent/all-ones on one side.
    pub fn new(a: &[usize], b: &[usize], trans_a: bool, trans_b: bool) -> Result<Self, String> {
        if a.len() < 2 || b.len() < 2 {
            return Err(format!("operands {a:?} and {b:?} need rank 2 or more"));
        }
        let (ar, ac) = (a[a.len() - 2], a[a.len() - 1]);
        let (br, bc) = (b[b.len() - 2], b[b.len() - 1]);
        let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if trans_b { (bc, br) } else { (br, bc) };
        if k != k2 {
            return Err(format!("inner sizes differ: {a:?} x {b:?} (trans {trans_a}, {trans_b})"));
        }
        let ab = &a[..a.len() - 2];
        let bb = &b[..b.len() - 2];
        let batch = broadcast_shapes(ab, bb).ok_or_else(|| format!("batch dims {ab:?} and {bb:?} do not broadcast"))?;
        let nb = numel(&batch);
        let stride_of = |own: &[usize], mat: usize| -> Result<usize, String> {
            if numel(own) == nb {
                Ok(mat)
            } else if numel(own) == 1 {
                Ok(0)
            } else {
                Err(format!("partially broadcast batch dims {ab:?} x {bb:?} are not supported"))
            }
        };
        let a_batch_stride = stride_of(ab, ar * ac)?;
        let b_batch_stride = stride_of(bb, br * bc)?;
        let (a_rs, a_cs) = if trans_a { (1, ac) } else { (ac, 1) };
        let (b_rs, b_cs) = if trans_b { (1, bc) } else { (bc, 1) };
        Ok(MatMulDims { batch, m, n, k, a_batch_stride, b_batch_stride, a_rs, a_cs, b_rs, b_cs })
    }

    /// Number of matrices in the batch.
    pub fn batch_count(&self) -> usize {
        numel(&self.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_shapes_and_strides() {
        let d = MatMulDims::new(&[3, 4, 5], &[5, 6], false, false).unwrap();
        assert_eq!((d.batch.clone(), d.m, d.n, d.k), (vec![3], 4, 6, 5));
        assert_eq!((d.a_batch_stride, d.b_batch_stride), (20, 0));
        let d = MatMulDims::new(&[5, 4], &[6, 5], true, true).unwrap();
        assert_eq!((d.m, d.n, d.k, d.a_rs, d.a_cs, d.b_rs, d.b_cs), (4, 6, 5, 1, 4, 1, 5));
        assert!(MatMulDims::new(&[2, 1, 4, 5], &[1, 3, 5, 6], false, false).is_err());
    }

    #[test]
    fn ceil_mode_drops_a_last_window_that_starts_in_the_end_padding() {
        let pool = |kernel, stride, pad, ceil_mode| {
            Op::Pool(PoolAttrs {
                kind: PoolKind::Max,
                kernel: vec![kernel],
                strides: vec![stride],
                dilations: vec![1],
                pads_begin: vec![pad],
                pads_end: vec![pad],
                ceil_mode,
            })
        };
        // ONNX's test_maxpool_2d_ceil_output_size_reduce_by_one and
        // test_averagepool_2d_ceil_last_window_starts_on_pad, on one spatial dim.
        assert_eq!(pool(1, 2, 0, true).output_shape(&[&[1, 1, 2]]), Ok(vec![1, 1, 1]));
        assert_eq!(pool(3, 3, 1, true).output_shape(&[&[1, 3, 2]]), Ok(vec![1, 3, 1]));
        // A last window that starts inside the input (or the begin padding) stays.
        assert_eq!(pool(2, 2, 0, true).output_shape(&[&[1, 1, 5]]), Ok(vec![1, 1, 3]));
        assert_eq!(pool(3, 2, 1, true).output_shape(&[&[1, 1, 6]]), Ok(vec![1, 1, 4]));
        assert_eq!(pool(3, 2, 1, false).output_shape(&[&[1, 1, 6]]), Ok(vec![1, 1, 3]));
    }

    #[test]
    fn window_sizes() {
        assert_eq!(window_output(28, 3, 1, 1, 0, false), Ok(26));
        assert_eq!(window_output(26, 2, 2, 1, 0, false), Ok(13));
        assert_eq!(window_output(5, 2, 2, 1, 0, true), Ok(3));
        assert!(window_output(2, 3, 1, 1, 0, false).is_err());
    }
}
