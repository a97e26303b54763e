//! Elementwise functions of two tensors with numpy broadcasting.

use crate::cpu::kernels::for_each_index;
use crate::cpu::real::Real;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{CaseInput, CaseRng, CpuArgs, OpCase, OpDef, UnaryGrad, UnaryOp, VjpCtx, arity};
use crate::shape::{broadcast_shapes, broadcast_strides, coalesce_dims, contiguous_strides};
use crate::wgpu_exec::lower::{Dispatch, LowerCtx};
use crate::wgpu_exec::uniforms::{MAX_RANK, rank_array};

const BINARY: &str = include_str!("../../../shaders/binary.wgsl");

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
    /// a < b (boolean).
    Less,
    /// a <= b (boolean).
    LessOrEqual,
    /// a > b (boolean).
    Greater,
    /// a >= b (boolean).
    GreaterOrEqual,
    /// a == b (boolean).
    Equal,
    /// a and b, each true where nonzero (boolean).
    And,
    /// a or b (boolean).
    Or,
    /// a xor b (boolean).
    Xor,
    /// The remainder with the divisor's sign, `a - b * floor(a / b)` (ONNX Mod, Python's `%`).
    Mod,
    /// The remainder with the dividend's sign, C's `fmod` (ONNX Mod with `fmod=1`).
    Fmod,
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
            BinaryOp::Less => truth(a < b),
            BinaryOp::LessOrEqual => truth(a <= b),
            BinaryOp::Greater => truth(a > b),
            BinaryOp::GreaterOrEqual => truth(a >= b),
            BinaryOp::Equal => truth(a == b),
            BinaryOp::And => truth(a != T::zero() && b != T::zero()),
            BinaryOp::Or => truth(a != T::zero() || b != T::zero()),
            BinaryOp::Xor => truth((a != T::zero()) != (b != T::zero())),
            BinaryOp::Mod => {
                let r = a % b;
                if r != T::zero() && (r < T::zero()) != (b < T::zero()) { r + b } else { r }
            }
            BinaryOp::Fmod => a % b,
        }
    }

    /// Whether the result is a boolean (a comparison or a logical op): no gradient flows through it.
    pub fn is_boolean(self) -> bool {
        matches!(
            self,
            BinaryOp::Less
                | BinaryOp::LessOrEqual
                | BinaryOp::Greater
                | BinaryOp::GreaterOrEqual
                | BinaryOp::Equal
                | BinaryOp::And
                | BinaryOp::Or
                | BinaryOp::Xor
        )
    }
}

/// A boolean as the engine stores it (1 or 0).
fn truth<T: Real>(b: bool) -> T {
    if b { T::one() } else { T::zero() }
}

/// The WGSL expression of `a (op) b`.
fn binary_expr(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "a + b",
        BinaryOp::Sub => "a - b",
        BinaryOp::Mul => "a * b",
        BinaryOp::Div => "a / b",
        // pow() is undefined for negative bases in WGSL; match IEEE pow for integral exponents.
        BinaryOp::Pow => {
            "select(select(1.0, -1.0, abs(b - 2.0 * floor(b / 2.0)) == 1.0) * pow(abs(a), b), pow(a, b), a >= 0.0 || b != floor(b))"
        }
        BinaryOp::Min => "min(a, b)",
        BinaryOp::Max => "max(a, b)",
        BinaryOp::Less => "select(0.0, 1.0, a < b)",
        BinaryOp::LessOrEqual => "select(0.0, 1.0, a <= b)",
        BinaryOp::Greater => "select(0.0, 1.0, a > b)",
        BinaryOp::GreaterOrEqual => "select(0.0, 1.0, a >= b)",
        BinaryOp::Equal => "select(0.0, 1.0, a == b)",
        BinaryOp::And => "select(0.0, 1.0, a != 0.0 && b != 0.0)",
        BinaryOp::Or => "select(0.0, 1.0, a != 0.0 || b != 0.0)",
        BinaryOp::Xor => "select(0.0, 1.0, (a != 0.0) != (b != 0.0))",
        BinaryOp::Mod => "mod_floor(a, b)",
        BinaryOp::Fmod => "fmod_ieee(a, b)",
    }
}

crate::uniforms! {
    /// shaders/binary.wgsl: offsets, then the output dims and each operand's broadcast strides.
    pub struct BinaryParams {
        n: u32, rank: u32, a: u32, b: u32, out: u32,
        dims: [u32; 8], a_strides: [u32; 8], b_strides: [u32; 8],
    }
}

impl BinaryParams {
    /// The block of `out = a (op) b` over `out_shape`, or `None` when the dims do not merge down to
    /// [`MAX_RANK`].
    pub fn broadcast(a: (usize, &[usize]), b: (usize, &[usize]), out: (usize, &[usize])) -> Option<BinaryParams> {
        let so = contiguous_strides(out.1);
        let sa = broadcast_strides(a.1, out.1);
        let sb = broadcast_strides(b.1, out.1);
        let (d, st) = coalesce_dims(out.1, &[so, sa, sb]);
        (d.len() <= MAX_RANK).then(|| BinaryParams {
            n: crate::shape::numel(out.1) as u32,
            rank: d.len() as u32,
            a: a.0 as u32,
            b: b.0 as u32,
            out: out.0 as u32,
            dims: rank_array(&d),
            a_strides: rank_array(&st[1]),
            b_strides: rank_array(&st[2]),
        })
    }
}

/// The dispatch of `out = a (op) b` (also used in place by the convolution's bias).
pub fn binary_dispatch(
    cx: &LowerCtx<'_>,
    op: BinaryOp,
    params: BinaryParams,
    regions: [crate::plan::Region; 3],
) -> Dispatch {
    let n = params.n as usize;
    Dispatch::new(
        BINARY,
        &[],
        params,
        &[("A", regions[0]), ("B", regions[1]), ("O", regions[2])],
        &[("EXPR", binary_expr(op).to_string())],
        cx.grid(n),
    )
}

impl OpDef for BinaryOp {
    fn name(&self) -> &'static str {
        "Binary"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        arity(inputs, 2, 2)?;
        broadcast_shapes(inputs[0], inputs[1])
            .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", inputs[0], inputs[1]))
    }

    fn output_dtype(&self, inputs: &[DType]) -> DType {
        if self.is_boolean() { DType::Bool } else { inputs.first().copied().unwrap_or_default() }
    }

    fn eval<T: Real>(&self, args: &CpuArgs<'_, T>, out: &mut [T]) {
        let (a, b) = (args.x(0), args.x(1));
        let (a_shape, b_shape, out_shape) = (args.s(0), args.s(1), args.out_shape);
        if a_shape == b_shape {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = self.apply(x, y);
            }
            return;
        }
        let sa = broadcast_strides(a_shape, out_shape);
        let sb = broadcast_strides(b_shape, out_shape);
        let so = contiguous_strides(out_shape);
        let (dims, st) = coalesce_dims(out_shape, &[so, sa, sb]);
        for_each_index(&dims, [&st[0], &st[1], &st[2]], |[o, i, j]| out[o] = self.apply(a[i], b[j]));
    }

    fn vjp(&self, cx: &mut VjpCtx<'_>) -> Result<Vec<Option<ValueId>>> {
        let (a, c, dy, y) = (cx.inputs[0], cx.inputs[1], cx.dy, cx.output);
        let (sa, sc) = (cx.shape(a), cx.shape(c));
        let mut out = vec![None, None];
        if self.is_boolean() {
            return Ok(out);
        }
        match self {
            BinaryOp::Add | BinaryOp::Sub => {
                if cx.need(0) {
                    out[0] = Some(cx.unbroadcast(dy, &sa)?);
                }
                if cx.need(1) {
                    let g = if *self == BinaryOp::Sub { cx.node(UnaryOp::Neg, &[dy])? } else { dy };
                    out[1] = Some(cx.unbroadcast(g, &sc)?);
                }
            }
            BinaryOp::Mul => {
                if cx.need(0) {
                    let g = cx.node(BinaryOp::Mul, &[dy, c])?;
                    out[0] = Some(cx.unbroadcast(g, &sa)?);
                }
                if cx.need(1) {
                    let g = cx.node(BinaryOp::Mul, &[dy, a])?;
                    out[1] = Some(cx.unbroadcast(g, &sc)?);
                }
            }
            BinaryOp::Div => {
                if cx.need(0) {
                    let g = cx.node(BinaryOp::Div, &[dy, c])?;
                    out[0] = Some(cx.unbroadcast(g, &sa)?);
                }
                if cx.need(1) {
                    // d(a/c)/dc = -(a/c)/c = -y/c
                    let t = cx.node(BinaryOp::Div, &[y, c])?;
                    let t = cx.node(BinaryOp::Mul, &[dy, t])?;
                    let g = cx.node(UnaryOp::Neg, &[t])?;
                    out[1] = Some(cx.unbroadcast(g, &sc)?);
                }
            }
            BinaryOp::Pow => {
                if cx.need(0) {
                    // c * a^(c-1) = c * y / a
                    let t = cx.node(BinaryOp::Div, &[y, a])?;
                    let t = cx.node(BinaryOp::Mul, &[t, c])?;
                    let g = cx.node(BinaryOp::Mul, &[dy, t])?;
                    out[0] = Some(cx.unbroadcast(g, &sa)?);
                }
                if cx.need(1) {
                    let l = cx.node(UnaryOp::Log, &[a])?;
                    let t = cx.node(BinaryOp::Mul, &[y, l])?;
                    let g = cx.node(BinaryOp::Mul, &[dy, t])?;
                    out[1] = Some(cx.unbroadcast(g, &sc)?);
                }
            }
            BinaryOp::Less
            | BinaryOp::LessOrEqual
            | BinaryOp::Greater
            | BinaryOp::GreaterOrEqual
            | BinaryOp::Equal
            | BinaryOp::And
            | BinaryOp::Or
            | BinaryOp::Xor => {}
            BinaryOp::Mod | BinaryOp::Fmod => {
                // y = a - b * q with q = (a - y) / b an integer: dy/da = 1, dy/db = -q.
                if cx.need(0) {
                    out[0] = Some(cx.unbroadcast(dy, &sa)?);
                }
                if cx.need(1) {
                    let t = cx.node(BinaryOp::Sub, &[a, y])?;
                    let q = cx.node(BinaryOp::Div, &[t, c])?;
                    let g = cx.node(BinaryOp::Mul, &[dy, q])?;
                    let g = cx.node(UnaryOp::Neg, &[g])?;
                    out[1] = Some(cx.unbroadcast(g, &sc)?);
                }
            }
            BinaryOp::Min | BinaryOp::Max => {
                // dy goes to a where it is chosen (a > c for Max, a < c for Min), to c elsewhere.
                let diff = if *self == BinaryOp::Max { [a, c] } else { [c, a] };
                let diff = cx.node(BinaryOp::Sub, &diff)?;
                let ga = cx.node(UnaryGrad(UnaryOp::Relu), &[diff, dy])?;
                if cx.need(1) {
                    let gc = cx.node(BinaryOp::Sub, &[dy, ga])?;
                    out[1] = Some(cx.unbroadcast(gc, &sc)?);
                }
                if cx.need(0) {
                    out[0] = Some(cx.unbroadcast(ga, &sa)?);
                }
            }
        }
        Ok(out)
    }

    fn lower(&self, cx: &LowerCtx<'_>) -> Result<Vec<Dispatch>> {
        let (a, b, o) = (cx.in_loc(0), cx.in_loc(1), cx.out_loc());
        let params =
            BinaryParams::broadcast((a.offset, cx.in_shape(0)), (b.offset, cx.in_shape(1)), (o.offset, cx.out_shape()))
                .ok_or_else(|| cx.too_many_dims(cx.out_shape().len()))?;
        Ok(vec![binary_dispatch(cx, *self, params, [a.region, b.region, o.region])])
    }

    fn cases(rng: &mut CaseRng) -> Vec<OpCase> {
        let r = rng.size(2, 40);
        let shapes: Vec<(Vec<usize>, Vec<usize>)> = vec![
            (vec![7], vec![7]),
            (vec![1], vec![5, 3]),
            (vec![4, 1, 3], vec![5, 1]),
            (vec![2, 3, 4, 5], vec![3, 1, 5]),
            (vec![33, 10], vec![10]),
            (vec![r, 1], vec![1, 9]),
            (vec![6, 1, 1, 7], vec![1, 5, 3, 1]),
            (vec![2, 2, 2, 2, 2, 2, 2], vec![2, 1, 2, 1, 2, 1, 2]),
            (vec![2, 3, 2, 3, 2, 3, 2, 3], vec![2, 1, 2, 1, 2, 1, 2, 1]),
        ];
        let mut out = Vec::new();
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Min, BinaryOp::Max] {
            for (a, b) in &shapes {
                out.push(OpCase::uniform(op, &[a.clone(), b.clone()], 0.5, 2.0));
                out.push(OpCase::uniform(op, &[b.clone(), a.clone()], -2.0, -0.5).with_params(&[true, false]));
            }
        }
        out.push(OpCase::uniform(BinaryOp::Pow, &[vec![5, 9], vec![9]], 0.1, 3.0));
        // Comparisons and logic on values with ties and zeros, broadcast.
        let a: Vec<f32> = (0..12).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let b: Vec<f32> = (0..4).map(|i| i as f32 - 1.0).collect();
        for op in [
            BinaryOp::Less,
            BinaryOp::LessOrEqual,
            BinaryOp::Greater,
            BinaryOp::GreaterOrEqual,
            BinaryOp::Equal,
            BinaryOp::And,
            BinaryOp::Or,
            BinaryOp::Xor,
        ] {
            out.push(OpCase::new(
                op,
                vec![CaseInput::values(vec![3, 4], a.clone()), CaseInput::values(vec![4], b.clone())],
            ));
            out.push(OpCase::uniform(op, &[vec![rng.size(1, 9), 1], vec![1, 5]], -1.0, 1.0));
        }
        // Negative bases with integral exponents follow IEEE pow.
        out.push(OpCase::new(
            BinaryOp::Pow,
            vec![
                CaseInput::values(vec![6], vec![-1.5, -1.5, -2.0, -0.5, -3.0, -3.0]),
                CaseInput::values(vec![6], vec![2.0, 3.0, 2.0, 3.0, 0.0, 1.0]),
            ],
        ));
        // Remainders of mixed signs, and their gradients away from the jumps.
        let a: Vec<f32> = vec![-7.5, -4.0, -1.25, 0.0, 1.25, 4.0, 7.5, 5.5];
        let b: Vec<f32> = vec![2.0, -3.0, 2.0, -3.0, 0.75, 1.5, -2.25, 3.0];
        for op in [BinaryOp::Mod, BinaryOp::Fmod] {
            out.push(OpCase::new(
                op,
                vec![CaseInput::values(vec![8], a.clone()), CaseInput::values(vec![8], b.clone())],
            ));
            out.push(OpCase::uniform(op, &[vec![rng.size(1, 30), 4], vec![4]], -9.0, 9.0));
            out.push(
                OpCase::new(
                    op,
                    vec![
                        CaseInput::values(vec![2, 3], vec![-7.3, -4.1, -1.2, 1.3, 4.2, 7.6]),
                        CaseInput::values(vec![3], vec![2.1, -3.3, 1.7]),
                    ],
                )
                .with_gradient(),
            );
        }
        for op in
            [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Min, BinaryOp::Max]
        {
            out.push(OpCase::uniform(op, &[vec![3, 4], vec![3, 4]], 0.5, 2.0).with_gradient());
            out.push(OpCase::uniform(op, &[vec![2, 3, 4], vec![3, 1]], 0.5, 2.0).with_gradient());
        }
        out
    }
}
