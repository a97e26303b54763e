//! Elementwise functions of one tensor ([`UnaryOp`]) and their gradient ([`UnaryGrad`]:
//! `dx = dy * f'(x)`).

use crate::cpu::real::Real;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, VjpCtx, arity, no_gradient};
use crate::shape::numel;
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};
use crate::wgpu_exec::template::f32_literal;

const UNARY: &str = include_str!("../../../shaders/unary.wgsl");
const UNARY_GRAD: &str = include_str!("../../../shaders/unary_grad.wgsl");

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
    /// The error function, erf(x)
    Erf,
    /// The largest integer <= x (gradient 0)
    Floor,
    /// The smallest integer >= x (gradient 0)
    Ceil,
    /// x rounded to the nearest integer, halves to even (gradient 0)
    Round,
    /// -1, 0 or 1 as x is negative, zero or positive (gradient 0)
    Sign,
    /// x / (1 + |x|)
    Softsign,
    /// sin(x)
    Sin,
    /// cos(x)
    Cos,
    /// tan(x)
    Tan,
    /// arcsin(x), on [-1, 1]
    Asin,
    /// arccos(x), on [-1, 1]
    Acos,
    /// arctan(x)
    Atan,
    /// sinh(x)
    Sinh,
    /// cosh(x)
    Cosh,
    /// arsinh(x)
    Asinh,
    /// arcosh(x), on [1, inf)
    Acosh,
    /// artanh(x), on (-1, 1)
    Atanh,
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
            UnaryOp::Tanh => x.tanh_kernel(),
            UnaryOp::Softplus => softplus(x),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Clip { min, max } => x.max(T::of(min)).min(T::of(max)),
            UnaryOp::Identity => x,
            UnaryOp::Erf => x.erf(),
            UnaryOp::Floor => x.floor(),
            UnaryOp::Ceil => x.ceil(),
            UnaryOp::Round => round_half_even(x),
            UnaryOp::Sign => {
                if x > zero {
                    one
                } else if x < zero {
                    -one
                } else {
                    x
                }
            }
            UnaryOp::Softsign => x / (one + x.abs()),
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Tan => x.tan(),
            UnaryOp::Asin => x.asin(),
            UnaryOp::Acos => x.acos(),
            UnaryOp::Atan => x.atan(),
            UnaryOp::Sinh => x.sinh(),
            UnaryOp::Cosh => x.cosh(),
            UnaryOp::Asinh => x.asinh(),
            UnaryOp::Acosh => x.acosh(),
            UnaryOp::Atanh => x.atanh(),
        }
    }

    /// The derivative of the function at `x` (the CPU reference of [`UnaryGrad`]).
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
                let t = x.tanh_kernel();
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
            UnaryOp::Erf => T::of(std::f32::consts::FRAC_2_SQRT_PI) * (-x * x).exp(),
            UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round | UnaryOp::Sign => zero,
            UnaryOp::Softsign => one / ((one + x.abs()) * (one + x.abs())),
            UnaryOp::Sin => x.cos(),
            UnaryOp::Cos => -x.sin(),
            UnaryOp::Tan => {
                let t = x.tan();
                one + t * t
            }
            UnaryOp::Asin => one / (one - x * x).sqrt(),
            UnaryOp::Acos => -one / (one - x * x).sqrt(),
            UnaryOp::Atan => one / (one + x * x),
            UnaryOp::Sinh => x.cosh(),
            UnaryOp::Cosh => x.sinh(),
            UnaryOp::Asinh => one / (x * x + one).sqrt(),
            UnaryOp::Acosh => one / (x * x - one).sqrt(),
            UnaryOp::Atanh => one / (one - x * x),
        }
    }
}

/// Rounds to the nearest integer, halves to the even one (ONNX Round, numpy's `round`).
pub fn round_half_even<T: Real>(x: T) -> T {
    let f = x.floor();
    let d = x - f;
    let half = T::of(0.5);
    if d > half || (d == half && (f / T::of(2.0)).fract() != T::zero()) { f + T::one() } else { f }
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

/// The WGSL expression of `f(x)`.
fn unary_expr(op: UnaryOp) -> String {
    let f = f32_literal;
    match op {
        UnaryOp::Relu => "max(x, 0.0)".into(),
        UnaryOp::LeakyRelu { alpha } => format!("select({} * x, x, x >= 0.0)", f(alpha)),
        UnaryOp::Elu { alpha } => format!("select({} * (exp(min(x, 0.0)) - 1.0), x, x > 0.0)", f(alpha)),
        UnaryOp::Selu { alpha, gamma } => {
            format!("{} * select({} * (exp(min(x, 0.0)) - 1.0), x, x > 0.0)", f(gamma), f(alpha))
        }
        UnaryOp::Sigmoid => "select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0)".into(),
        UnaryOp::HardSigmoid { alpha, beta } => format!("clamp({} * x + {}, 0.0, 1.0)", f(alpha), f(beta)),
        UnaryOp::Tanh => "tanh(clamp(x, -20.0, 20.0))".into(),
        UnaryOp::Softplus => "softplus(x)".into(),
        UnaryOp::Exp => "exp(x)".into(),
        UnaryOp::Log => "log(x)".into(),
        UnaryOp::Sqrt => "sqrt(x)".into(),
        UnaryOp::Neg => "-x".into(),
        UnaryOp::Abs => "abs(x)".into(),
        UnaryOp::Clip { min, max } => format!("min(max(x, {}), {})", f(min), f(max)),
        UnaryOp::Identity => "x".into(),
        UnaryOp::Erf => "erf_approx(x)".into(),
        UnaryOp::Floor => "floor(x)".into(),
        UnaryOp::Ceil => "ceil(x)".into(),
        // WGSL's round() rounds halves to even, as ONNX's Round.
        UnaryOp::Round => "round(x)".into(),
        UnaryOp::Sign => "sign(x)".into(),
        UnaryOp::Softsign => "x / (1.0 + abs(x))".into(),
        UnaryOp::Sin => "sin(x)".into(),
        UnaryOp::Cos => "cos(x)".into(),
        UnaryOp::Tan => "tan(x)".into(),
        UnaryOp::Asin => "asin_precise(x)".into(),
        UnaryOp::Acos => "acos_precise(x)".into(),
        UnaryOp::Atan => "atan_precise(x)".into(),
        UnaryOp::Sinh => "sinh(x)".into(),
        UnaryOp::Cosh => "cosh(x)".into(),
        // The odd form, so negative x do not lose their digits to cancellation.
        UnaryOp::Asinh => "sign(x) * log(abs(x) + sqrt(x * x + 1.0))".into(),
        UnaryOp::Acosh => "acosh(x)".into(),
        UnaryOp::Atanh => "atanh(x)".into(),
    }
}

/// The WGSL expression of `f'(x)`.
fn derivative_expr(op: UnaryOp) -> String {
    let f = f32_literal;
    match op {
        UnaryOp::Relu => "select(0.0, 1.0, x > 0.0)".into(),
        UnaryOp::LeakyRelu { alpha } => format!("select({}, 1.0, x >= 0.0)", f(alpha)),
        UnaryOp::Elu { alpha } => format!("select({} * exp(min(x, 0.0)), 1.0, x > 0.0)", f(alpha)),
        UnaryOp::Selu { alpha, gamma } => {
            format!("{} * select({} * exp(min(x, 0.0)), 1.0, x > 0.0)", f(gamma), f(alpha))
        }
        UnaryOp::Sigmoid => "sigm(x) * (1.0 - sigm(x))".into(),
        UnaryOp::HardSigmoid { alpha, beta } => {
            format!("select(0.0, {a}, {a} * x + {b} > 0.0 && {a} * x + {b} < 1.0)", a = f(alpha), b = f(beta))
        }
        UnaryOp::Tanh => "1.0 - tanh(clamp(x, -20.0, 20.0)) * tanh(clamp(x, -20.0, 20.0))".into(),
        UnaryOp::Softplus => "sigm(x)".into(),
        UnaryOp::Exp => "exp(x)".into(),
        UnaryOp::Log => "1.0 / x".into(),
        UnaryOp::Sqrt => "0.5 / sqrt(x)".into(),
        UnaryOp::Neg => "-1.0".into(),
        UnaryOp::Abs => "sign(x)".into(),
        UnaryOp::Clip { min, max } => format!("select(0.0, 1.0, x >= {} && x <= {})", f(min), f(max)),
        UnaryOp::Identity => "1.0".into(),
        UnaryOp::Erf => "1.1283791671 * exp(-x * x)".into(),
        UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round | UnaryOp::Sign => "0.0".into(),
        UnaryOp::Softsign => "1.0 / ((1.0 + abs(x)) * (1.0 + abs(x)))".into(),
        UnaryOp::Sin => "cos(x)".into(),
        UnaryOp::Cos => "-sin(x)".into(),
        UnaryOp::Tan => "1.0 + tan(x) * tan(x)".into(),
        UnaryOp::Asin => "inverseSqrt(1.0 - x * x)".into(),
        UnaryOp::Acos => "-inverseSqrt(1.0 - x * x)".into(),
        UnaryOp::Atan => "1.0 / (1.0 + x * x)".into(),
        UnaryOp::Sinh => "cosh(x)".into(),
        UnaryOp::Cosh => "sinh(x)".into(),
        UnaryOp::Asinh => "inverseSqrt(x * x + 1.0)".into(),
        UnaryOp::Acosh => "inverseSqrt(x * x - 1.0)".into(),
        UnaryOp::Atanh => "1.0 / (1.0 - x * x)".into(),
    }
}

/// Every unary function with parameters the tests use, and the input range each is checked on.
fn all_unary() -> Vec<(UnaryOp, f32, f32)> {
    vec![
        (UnaryOp::Relu, -6.0, 6.0),
        (UnaryOp::LeakyRelu { alpha: 0.1 }, -6.0, 6.0),
        (UnaryOp::Elu { alpha: 0.7 }, -6.0, 6.0),
        (UnaryOp::Selu { alpha: 1.673_263_2, gamma: 1.050_701 }, -6.0, 6.0),
        (UnaryOp::Sigmoid, -6.0, 6.0),
        (UnaryOp::HardSigmoid { alpha: 0.2, beta: 0.5 }, -6.0, 6.0),
        (UnaryOp::Tanh, -6.0, 6.0),
        (UnaryOp::Softplus, -6.0, 6.0),
        (UnaryOp::Exp, -6.0, 6.0),
        (UnaryOp::Neg, -6.0, 6.0),
        (UnaryOp::Abs, -6.0, 6.0),
        (UnaryOp::Clip { min: -0.5, max: 0.25 }, -6.0, 6.0),
        (UnaryOp::Clip { min: f32::NEG_INFINITY, max: 0.25 }, -6.0, 6.0),
        (UnaryOp::Identity, -6.0, 6.0),
        (UnaryOp::Log, 0.01, 9.0),
        (UnaryOp::Sqrt, 0.01, 9.0),
        (UnaryOp::Erf, -4.0, 4.0),
        (UnaryOp::Floor, -6.0, 6.0),
        (UnaryOp::Ceil, -6.0, 6.0),
        (UnaryOp::Round, -6.0, 6.0),
        (UnaryOp::Sign, -6.0, 6.0),
        (UnaryOp::Softsign, -6.0, 6.0),
        (UnaryOp::Sin, -6.0, 6.0),
        (UnaryOp::Cos, -6.0, 6.0),
        (UnaryOp::Tan, -1.3, 1.3),
        (UnaryOp::Asin, -0.95, 0.95),
        (UnaryOp::Acos, -0.95, 0.95),
        (UnaryOp::Atan, -6.0, 6.0),
        (UnaryOp::Sinh, -4.0, 4.0),
        (UnaryOp::Cosh, -4.0, 4.0),
        (UnaryOp::Asinh, -6.0, 6.0),
        (UnaryOp::Acosh, 1.05, 9.0),
        (UnaryOp::Atanh, -0.95, 0.95),
    ]
}

crate::uniforms! {
    /// shaders/unary.wgsl.
    pub struct UnaryParams { n: u32, x: u32, out: u32 }
}

/// The dispatch of `out[i] = expr(x[i])` over the node's input 0 and output (shaders/unary.wgsl;
/// `expr` reads `x`).
pub fn unary_dispatch(cx: &LowerCtx<'_>, expr: String) -> Dispatch {
    unary_dispatch_to(cx, cx.out_loc(), expr)
}

/// [`unary_dispatch`] writing to `o` (a node's other output, of the input's length).
pub fn unary_dispatch_to(cx: &LowerCtx<'_>, o: crate::plan::Location, expr: String) -> Dispatch {
    let (x, n) = (cx.in_loc(0), numel(cx.in_shape(0)));
    let params = UnaryParams { n: n as u32, x: x.offset as u32, out: o.offset as u32 };
    Dispatch::new(UNARY, &[], params, &[("X", x.region), ("O", o.region)], &[("EXPR", expr)], cx.grid(n))
}

crate::uniforms! {
    /// shaders/unary_grad.wgsl.
    pub struct UnaryGradParams { n: u32, x: u32, dy: u32, out: u32 }
}

impl OpDef for UnaryOp {
    fn name(&self) -> &'static str {
        "Unary"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 1, 1)?;
        Ok(inputs[0].to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let x = args.x(0);
        // The common cases get their own loops so the compiler vectorises them.
        match self {
            UnaryOp::Relu => out.iter_mut().zip(x).for_each(|(o, &v)| *o = v.max(T::zero())),
            UnaryOp::Identity => out.copy_from_slice(x),
            UnaryOp::Neg => out.iter_mut().zip(x).for_each(|(o, &v)| *o = -v),
            _ => out.iter_mut().zip(x).for_each(|(o, &v)| *o = self.apply(v)),
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let dy = cx.dy;
        Ok(vec![Some(match self {
            UnaryOp::Identity => dy,
            UnaryOp::Neg => cx.node(UnaryOp::Neg, &[dy])?,
            u => {
                let x = cx.inputs[0];
                cx.node(UnaryGrad(*u), &[x, dy])?
            }
        })])
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        Ok(vec![unary_dispatch(cx, unary_expr(*self))])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let mut out = Vec::new();
        // Halves round to even; signs of zero.
        let halves = vec![-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 3.5, -0.0, 1.2];
        for op in [UnaryOp::Round, UnaryOp::Sign, UnaryOp::Floor, UnaryOp::Ceil] {
            out.push(OpCase::new(op, vec![CaseInput::values(vec![10], halves.clone())]));
        }
        for (op, lo, hi) in all_unary() {
            for n in [1usize, 7, 256, 1000, 4099, rng.size(2, 3000)] {
                out.push(OpCase::uniform(op, &[vec![n]], lo, hi));
            }
            // Gradients on a range away from the kinks of Relu, Abs, Clip and HardSigmoid, within
            // the function's domain.
            let (glo, ghi) = if lo > 0.0 { (lo.max(0.5), hi.min(3.0)) } else { (lo.max(-2.0), hi.min(2.0)) };
            let smooth_at_kinks = !matches!(op, UnaryOp::Clip { min, .. } if min == f32::NEG_INFINITY);
            if smooth_at_kinks {
                out.push(OpCase::uniform(op, &[vec![4, 6]], glo, ghi).with_gradient());
            }
        }
        out
    }
}

/// The gradient of a unary function: `dx = dy * f'(x)`. Inputs: x (the function's input), dy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnaryGrad(pub UnaryOp);

impl OpDef for UnaryGrad {
    fn name(&self) -> &'static str {
        "UnaryGrad"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        if inputs[0] != inputs[1] {
            return Err(format!("shapes {:?} and {:?} differ", inputs[0], inputs[1]));
        }
        Ok(inputs[0].to_vec())
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (x, dy) = (args.x(0), args.x(1));
        match self.0 {
            UnaryOp::Relu => {
                out.iter_mut().zip(x).zip(dy).for_each(|((o, &v), &g)| *o = if v > T::zero() { g } else { T::zero() })
            }
            op => out.iter_mut().zip(x).zip(dy).for_each(|((o, &v), &g)| *o = g * op.derivative(v)),
        }
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        Err(no_gradient(cx, "UnaryGrad"))
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (x, dy, o, n) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc(), cx.out_len());
        let params = UnaryGradParams { n: n as u32, x: x.offset as u32, dy: dy.offset as u32, out: o.offset as u32 };
        Ok(vec![Dispatch::new(
            UNARY_GRAD,
            &[],
            params,
            &[("X", x.region), ("DY", dy.region), ("O", o.region)],
            &[("DERIV", derivative_expr(self.0))],
            cx.grid(n),
        )])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        all_unary()
            .into_iter()
            .filter(|(op, ..)| !matches!(op, UnaryOp::Identity | UnaryOp::Neg))
            .map(|(op, lo, hi)| {
                let n = rng.size(1, 300);
                OpCase::new(
                    UnaryGrad(op),
                    vec![
                        CaseInput::uniform(vec![3, n], lo.max(-4.0), hi.min(4.0)),
                        CaseInput::uniform(vec![3, n], -1.0, 1.0),
                    ],
                )
            })
            .collect()
    }
}
