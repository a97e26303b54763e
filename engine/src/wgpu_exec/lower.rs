//! Lowering each node of a planned graph to the dispatches that compute it.

use crate::graph::{Graph, Node};
use crate::op::{BinaryOp, LossKind, MatMulDims, Op, PoolKind, ReduceOp, UnaryOp};
use crate::plan::{Location, MemoryPlan, Region};
use crate::shape::{broadcast_strides, coalesce_dims, contiguous_strides, numel};
use crate::wgpu_exec::matmul::{choose_tile, matmul_grid, template_for, tile_override};
use crate::wgpu_exec::template::{ELEMENTWISE_WG, Shader, f32_literal, grid, instantiate};
use crate::window::Window3;
use crate::{EngineError, Result};

const UNARY: &str = include_str!("../../../shaders/unary.wgsl");
const BINARY: &str = include_str!("../../../shaders/binary.wgsl");
const COPY: &str = include_str!("../../../shaders/copy.wgsl");
const SOFTMAX: &str = include_str!("../../../shaders/softmax.wgsl");
const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");
const WINDOW: &str = include_str!("../../../shaders/window.wgsl");
const IM2COL: &str = include_str!("../../../shaders/im2col.wgsl");
const POOL: &str = include_str!("../../../shaders/pool.wgsl");
const BATCHNORM: &str = include_str!("../../../shaders/batchnorm.wgsl");
const UNARY_GRAD: &str = include_str!("../../../shaders/unary_grad.wgsl");
const SOFTMAX_GRAD: &str = include_str!("../../../shaders/softmax_grad.wgsl");
const COL2IM: &str = include_str!("../../../shaders/col2im.wgsl");
const POOL_GRAD: &str = include_str!("../../../shaders/pool_grad.wgsl");
const LOSS: &str = include_str!("../../../shaders/loss.wgsl");
const OPTIMIZER: &str = include_str!("../../../shaders/optimizer.wgsl");
const DROPOUT_MASK: &str = include_str!("../../../shaders/dropout_mask.wgsl");

/// Most elements one invocation of the reduction sums (lavapipe stops loops after 65,535
/// iterations per invocation; the index arithmetic costs a few iterations per element).
pub const REDUCE_CHUNK: usize = 4096;

/// Most dims the strided kernels handle after merging contiguous dims.
pub const MAX_RANK: usize = 8;

/// One compute dispatch: a shader, its uniform words and its grid.
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// The shader.
    pub shader: Shader,
    /// Uniform words (at most [`crate::wgpu_exec::template::UNIFORM_WORDS`]).
    pub uniforms: Vec<u32>,
    /// Workgroup counts.
    pub workgroups: [u32; 3],
}

/// What lowering needs to know of the adapter.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Largest workgroup count per dimension.
    pub max_groups: u32,
    /// Whether the adapter is a CPU implementation (changes the tile choice).
    pub cpu_adapter: bool,
    /// A matrix-product tile shape to use everywhere instead of the automatic choice.
    pub matmul_tile: Option<crate::wgpu_exec::matmul::TileConfig>,
}

fn u(x: usize) -> u32 {
    x as u32
}

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
    }
}

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
    }
}

fn loss_code(kind: LossKind) -> u32 {
    match kind {
        LossKind::SparseCategoricalLogits => 0,
        LossKind::SparseCategoricalProbs => 1,
        LossKind::CategoricalLogits => 2,
        LossKind::CategoricalProbs => 3,
        LossKind::BinaryLogits => 4,
        LossKind::BinaryProbs => 5,
        LossKind::MeanSquaredError => 6,
        LossKind::MeanAbsoluteError => 7,
    }
}

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
    }
}

fn pad_rank(v: &[usize]) -> Vec<u32> {
    let mut out: Vec<u32> = v.iter().map(|&x| u(x)).collect();
    out.resize(MAX_RANK, 0);
    out
}

fn too_many_dims(node: &Node, rank: usize) -> EngineError {
    EngineError::Unsupported(format!(
        "node `{}` ({}): {rank} non-contiguous dims after merging; the WGSL kernels handle {MAX_RANK}",
        node.name,
        node.op.name()
    ))
}

/// Scratch elements a node needs (the im2col buffer of a convolution that is not 1x1).
pub fn scratch_len(graph: &Graph, node: usize) -> usize {
    let n = &graph.nodes[node];
    match &n.op {
        Op::Conv(a) if !is_pointwise(a) => {
            let x = graph.shape(n.inputs[0]);
            let out = graph.shape(n.output);
            x[0] * x[1] * a.kernel.iter().product::<usize>() * numel(&out[2..])
        }
        Op::Reduce { axes, .. } => {
            let x = graph.shape(n.inputs[0]);
            let count: usize = axes.iter().map(|&a| x[a]).product();
            let n_out = numel(graph.shape(n.output));
            let mut total = 0;
            let mut c = count.div_ceil(REDUCE_CHUNK);
            while c > 1 {
                total += n_out * c;
                c = c.div_ceil(REDUCE_CHUNK);
            }
            total
        }
        Op::ConvGradInput { attrs, input_shape } => {
            let dy = graph.shape(n.inputs[0]);
            input_shape[0] * input_shape[1] * attrs.kernel.iter().product::<usize>() * numel(&dy[2..])
        }
        Op::ConvGradWeight { attrs, .. } => {
            let x = graph.shape(n.inputs[0]);
            let dy = graph.shape(n.inputs[1]);
            x[0] * x[1] * attrs.kernel.iter().product::<usize>() * numel(&dy[2..])
        }
        _ => 0,
    }
}

fn is_pointwise(a: &crate::op::ConvAttrs) -> bool {
    a.kernel.iter().all(|&k| k == 1)
        && a.strides.iter().all(|&s| s == 1)
        && a.pads_begin.iter().chain(&a.pads_end).all(|&p| p == 0)
}

/// A strided copy of `dims` elements from `src` to `dst`.
fn copy_dispatch(
    t: Target,
    node: &Node,
    dims: &[usize],
    src: (Location, Vec<usize>),
    dst: (Location, Vec<usize>),
) -> Result<Dispatch> {
    let (d, st) = coalesce_dims(dims, &[src.1, dst.1]);
    if d.len() > MAX_RANK {
        return Err(too_many_dims(node, d.len()));
    }
    let n = numel(dims);
    let mut un = vec![u(n), u(d.len()), u(src.0.offset), u(dst.0.offset), 0];
    un.extend(pad_rank(&d));
    un.extend(pad_rank(&st[0]));
    un.extend(pad_rank(&st[1]));
    Ok(Dispatch {
        shader: instantiate(COPY, &[], &[("X", src.0.region), ("O", dst.0.region)], &[]),
        uniforms: un,
        workgroups: grid(n, ELEMENTWISE_WG, t.max_groups),
    })
}

/// The dispatches that compute `graph.nodes[i]`, reading and writing the planned locations.
pub fn lower_node(graph: &Graph, plan: &MemoryPlan, i: usize, t: Target) -> Result<Vec<Dispatch>> {
    let node = &graph.nodes[i];
    let loc = |v: usize| plan.locations[v];
    let shape = |v: usize| graph.shape(v);
    let x0 = node.inputs.first().copied().unwrap_or(node.output);
    let (xl, ol) = (loc(x0), loc(node.output));
    let out_shape = shape(node.output);
    let n_out = numel(out_shape);
    let ew = grid(n_out, ELEMENTWISE_WG, t.max_groups);
    Ok(match &node.op {
        Op::Unary(op) => vec![Dispatch {
            shader: instantiate(UNARY, &[], &[("X", xl.region), ("O", ol.region)], &[("EXPR", unary_expr(*op))]),
            uniforms: vec![u(n_out), u(xl.offset), u(ol.offset)],
            workgroups: ew,
        }],
        Op::Binary(op) => {
            let (a, b) = (node.inputs[0], node.inputs[1]);
            let so = contiguous_strides(out_shape);
            let sa = broadcast_strides(shape(a), out_shape);
            let sb = broadcast_strides(shape(b), out_shape);
            let (d, st) = coalesce_dims(out_shape, &[so, sa, sb]);
            if d.len() > MAX_RANK {
                return Err(too_many_dims(node, d.len()));
            }
            let mut un = vec![u(n_out), u(d.len()), u(loc(a).offset), u(loc(b).offset), u(ol.offset)];
            un.extend(pad_rank(&d));
            un.extend(pad_rank(&st[1]));
            un.extend(pad_rank(&st[2]));
            vec![Dispatch {
                shader: instantiate(
                    BINARY,
                    &[],
                    &[("A", loc(a).region), ("B", loc(b).region), ("O", ol.region)],
                    &[("EXPR", binary_expr(*op).to_string())],
                ),
                uniforms: un,
                workgroups: ew,
            }]
        }
        Op::MatMul { trans_a, trans_b, alpha } => {
            let (a, b) = (node.inputs[0], node.inputs[1]);
            let d = MatMulDims::new(shape(a), shape(b), *trans_a, *trans_b)
                .map_err(|e| EngineError::Unsupported(format!("node `{}`: {e}", node.name)))?;
            let batch = d.batch_count();
            let mn = d.m * d.n;
            matmul_dispatches(
                t,
                MatMulCall {
                    m: d.m,
                    n: d.n,
                    k: d.k,
                    batch_hi: batch,
                    batch_lo: 1,
                    a: (loc(a), [d.a_batch_stride, 0], d.a_rs, d.a_cs),
                    b: (loc(b), [d.b_batch_stride, 0], d.b_rs, d.b_cs),
                    c: (ol, [mn, 0], d.n),
                    alpha: *alpha,
                    beta: 0.0,
                },
            )
        }
        Op::Softmax { axis, log } => {
            let s = shape(x0);
            let len = s[*axis];
            let inner: usize = s[axis + 1..].iter().product();
            let rows = n_out / len.max(1);
            let expr = if *log { "x - log(sum)" } else { "exp(x) / sum" };
            vec![Dispatch {
                shader: instantiate(SOFTMAX, &[], &[("X", xl.region), ("O", ol.region)], &[("EXPR", expr.into())]),
                uniforms: vec![u(rows), u(len), u(inner), u(xl.offset), u(ol.offset)],
                workgroups: grid(rows, ELEMENTWISE_WG, t.max_groups),
            }]
        }
        Op::Reshape { .. } => {
            if xl == ol {
                Vec::new()
            } else {
                let st = contiguous_strides(out_shape);
                vec![copy_dispatch(t, node, out_shape, (xl, st.clone()), (ol, st))?]
            }
        }
        Op::Transpose { perm } => {
            let s = shape(x0);
            let src = contiguous_strides(s);
            let permuted: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
            vec![copy_dispatch(t, node, out_shape, (xl, permuted), (ol, contiguous_strides(out_shape)))?]
        }
        Op::Concat { axis } => {
            let so = contiguous_strides(out_shape);
            let mut at = 0;
            let mut out = Vec::new();
            for &v in &node.inputs {
                let s = shape(v);
                let dst = Location { region: ol.region, offset: ol.offset + at * so[*axis] };
                out.push(copy_dispatch(t, node, s, (loc(v), contiguous_strides(s)), (dst, so.clone()))?);
                at += s[*axis];
            }
            out
        }
        Op::Reduce { op, axes, .. } => {
            let s = shape(x0);
            let src = contiguous_strides(s);
            let kept: Vec<usize> = (0..s.len()).filter(|i| !axes.contains(i)).collect();
            let kept_dims: Vec<usize> = kept.iter().map(|&i| s[i]).collect();
            let kept_strides: Vec<usize> = kept.iter().map(|&i| src[i]).collect();
            let red_dims: Vec<usize> = axes.iter().map(|&i| s[i]).collect();
            let red_strides: Vec<usize> = axes.iter().map(|&i| src[i]).collect();
            let count: usize = red_dims.iter().product();
            let scale = if *op == ReduceOp::Mean { 1.0 / count.max(1) as f32 } else { 1.0 };
            // Long reductions go in passes of at most REDUCE_CHUNK elements per invocation, the
            // partial sums through scratch space (see shaders/reduce.wgsl).
            let mut passes = Vec::new();
            let (mut src_loc, mut kd, mut ks, mut rd, mut rs, mut cnt) =
                (xl, kept_dims, kept_strides, red_dims, red_strides, count);
            let mut scratch_at = plan.scratch[i];
            loop {
                let chunks = cnt.div_ceil(REDUCE_CHUNK).max(1);
                let last = chunks == 1;
                let dst = if last {
                    ol
                } else {
                    let at = scratch_at.ok_or_else(|| EngineError::Unsupported("reduction without scratch".into()))?;
                    scratch_at = Some(Location { region: at.region, offset: at.offset + n_out * chunks });
                    at
                };
                let (kdc, ksc) = coalesce_dims(&kd, &[ks.clone()]);
                let (rdc, rsc) = coalesce_dims(&rd, &[rs.clone()]);
                if kdc.len() > MAX_RANK || rdc.len() > MAX_RANK {
                    return Err(too_many_dims(node, kdc.len().max(rdc.len())));
                }
                let pass_scale = if last { scale } else { 1.0 };
                let mut un = vec![
                    u(n_out * chunks),
                    u(kdc.len()),
                    u(rdc.len()),
                    u(cnt),
                    u(src_loc.offset),
                    u(dst.offset),
                    pass_scale.to_bits(),
                ];
                un.extend(pad_rank(&kdc));
                un.extend(pad_rank(&ksc[0]));
                un.extend(pad_rank(&rdc));
                un.extend(pad_rank(&rsc[0]));
                un.extend([u(chunks), u(REDUCE_CHUNK)]);
                passes.push(Dispatch {
                    shader: instantiate(REDUCE, &[], &[("X", src_loc.region), ("O", dst.region)], &[]),
                    uniforms: un,
                    workgroups: grid(n_out * chunks, ELEMENTWISE_WG, t.max_groups),
                });
                if last {
                    break;
                }
                // Next pass: the partial sums, [n_out, chunks], reduced over the chunks.
                src_loc = dst;
                kd = vec![n_out];
                ks = vec![chunks];
                rd = vec![chunks];
                rs = vec![1];
                cnt = chunks;
            }
            passes
        }
        Op::BatchNorm { epsilon, .. } => {
            let s = shape(x0);
            let inner: usize = s[2..].iter().product();
            let ins: Vec<Location> = node.inputs.iter().map(|&v| loc(v)).collect();
            vec![Dispatch {
                shader: instantiate(
                    BATCHNORM,
                    &[],
                    &[
                        ("X", ins[0].region),
                        ("SCALE", ins[1].region),
                        ("BIAS", ins[2].region),
                        ("MEAN", ins[3].region),
                        ("VAR", ins[4].region),
                        ("O", ol.region),
                    ],
                    &[],
                ),
                uniforms: vec![
                    u(n_out),
                    u(s[1]),
                    u(inner),
                    u(ins[0].offset),
                    u(ins[1].offset),
                    u(ins[2].offset),
                    u(ins[3].offset),
                    u(ins[4].offset),
                    u(ol.offset),
                    epsilon.to_bits(),
                ],
                workgroups: ew,
            }]
        }
        Op::Pool(p) => {
            let s = shape(x0);
            let w =
                Window3::new(&s[2..], &out_shape[2..], &p.kernel, &p.strides, &p.dilations, &p.pads_begin, &p.pads_end);
            let kind = match p.kind {
                PoolKind::Max => 0,
                PoolKind::Average { count_include_pad: false } => 1,
                PoolKind::Average { count_include_pad: true } => 2,
            };
            let mut un = vec![u(n_out), u(xl.offset), u(ol.offset), kind, 0, 0, 0, 0];
            un.extend(w.to_u32s());
            vec![Dispatch {
                shader: instantiate(POOL, &[WINDOW], &[("X", xl.region), ("O", ol.region)], &[]),
                uniforms: un,
                workgroups: ew,
            }]
        }
        Op::Conv(a) => {
            let s = shape(x0);
            let wshape = shape(node.inputs[1]);
            let wl = loc(node.inputs[1]);
            let w =
                Window3::new(&s[2..], &out_shape[2..], &a.kernel, &a.strides, &a.dilations, &a.pads_begin, &a.pads_end);
            let (n, c, m) = (s[0], s[1], wshape[0]);
            let (osp, kl) = (w.output_len(), w.kernel_len());
            let (cg, mg) = (c / a.group, m / a.group);
            let kg = cg * kl;
            let mut out = Vec::new();
            let cols = if is_pointwise(a) {
                xl
            } else {
                let at = plan.scratch[i].ok_or_else(|| EngineError::Unsupported("conv without scratch".into()))?;
                let col = at;
                let total = n * c * kl * osp;
                let mut un = vec![u(total), u(xl.offset), u(col.offset), 0, 0, 0, 0, 0];
                un.extend(w.to_u32s());
                out.push(Dispatch {
                    shader: instantiate(IM2COL, &[WINDOW], &[("X", xl.region), ("O", col.region)], &[]),
                    uniforms: un,
                    workgroups: grid(total, ELEMENTWISE_WG, t.max_groups),
                });
                col
            };
            out.extend(matmul_dispatches(
                t,
                MatMulCall {
                    m: mg,
                    n: osp,
                    k: kg,
                    batch_hi: n,
                    batch_lo: a.group,
                    a: (wl, [0, mg * kg], kg, 1),
                    b: (cols, [c * kl * osp, kg * osp], osp, 1),
                    c: (ol, [m * osp, mg * osp], osp),
                    alpha: 1.0,
                    beta: 0.0,
                },
            ));
            if let Some(&bias) = node.inputs.get(2) {
                // out[n, m, o] += bias[m]: a broadcast add in place.
                let mut un = vec![u(n_out), 3, u(ol.offset), u(loc(bias).offset), u(ol.offset)];
                un.extend(pad_rank(&[n, m, osp]));
                un.extend(pad_rank(&[m * osp, osp, 1]));
                un.extend(pad_rank(&[0, 1, 0]));
                out.push(Dispatch {
                    shader: instantiate(
                        BINARY,
                        &[],
                        &[("A", ol.region), ("B", loc(bias).region), ("O", ol.region)],
                        &[("EXPR", "a + b".into())],
                    ),
                    uniforms: un,
                    workgroups: ew,
                });
            }
            out
        }
        Op::Dropout { .. } => vec![Dispatch {
            shader: instantiate(UNARY, &[], &[("X", xl.region), ("O", ol.region)], &[("EXPR", "x".into())]),
            uniforms: vec![u(n_out), u(xl.offset), u(ol.offset)],
            workgroups: ew,
        }],
        Op::DropoutMask { rate, .. } => vec![Dispatch {
            shader: instantiate(DROPOUT_MASK, &[], &[("S", xl.region), ("O", ol.region)], &[]),
            uniforms: vec![u(n_out), u(xl.offset), u(ol.offset), rate.to_bits()],
            workgroups: ew,
        }],
        Op::Broadcast { .. } => {
            let src = broadcast_strides(shape(x0), out_shape);
            vec![copy_dispatch(t, node, out_shape, (xl, src), (ol, contiguous_strides(out_shape)))?]
        }
        Op::Slice { axis, start, .. } => {
            let src_strides = contiguous_strides(shape(x0));
            let from = Location { region: xl.region, offset: xl.offset + start * src_strides[*axis] };
            vec![copy_dispatch(t, node, out_shape, (from, src_strides), (ol, contiguous_strides(out_shape)))?]
        }
        Op::UnaryGrad(op) => {
            let dyl = loc(node.inputs[1]);
            vec![Dispatch {
                shader: instantiate(
                    UNARY_GRAD,
                    &[],
                    &[("X", xl.region), ("DY", dyl.region), ("O", ol.region)],
                    &[("DERIV", derivative_expr(*op))],
                ),
                uniforms: vec![u(n_out), u(xl.offset), u(dyl.offset), u(ol.offset)],
                workgroups: ew,
            }]
        }
        Op::SoftmaxGrad { axis, log } => {
            let s = shape(x0);
            let len = s[*axis];
            let inner: usize = s[axis + 1..].iter().product();
            let rows = n_out / len.max(1);
            let dyl = loc(node.inputs[1]);
            vec![Dispatch {
                shader: instantiate(SOFTMAX_GRAD, &[], &[("Y", xl.region), ("DY", dyl.region), ("O", ol.region)], &[]),
                uniforms: vec![u(rows), u(len), u(inner), u(xl.offset), u(dyl.offset), u(ol.offset), *log as u32],
                workgroups: grid(rows, ELEMENTWISE_WG, t.max_groups),
            }]
        }
        Op::ConvGradInput { attrs: a, input_shape } => {
            let (dyv, wv) = (node.inputs[0], node.inputs[1]);
            let (dyl, wl) = (loc(dyv), loc(wv));
            let dys = shape(dyv);
            let w = Window3::new(
                &input_shape[2..],
                &dys[2..],
                &a.kernel,
                &a.strides,
                &a.dilations,
                &a.pads_begin,
                &a.pads_end,
            );
            let (n, c, m) = (input_shape[0], input_shape[1], dys[1]);
            let (osp, kl) = (w.output_len(), w.kernel_len());
            let (cg, mg) = (c / a.group, m / a.group);
            let kg = cg * kl;
            let at = plan.scratch[i].ok_or_else(|| EngineError::Unsupported("conv gradient without scratch".into()))?;
            let col = at;
            // col[n, g] (kg x osp) = W[g]^T (kg x mg) @ dy[n, g] (mg x osp)
            let mm = matmul_dispatches(
                t,
                MatMulCall {
                    m: kg,
                    n: osp,
                    k: mg,
                    batch_hi: n,
                    batch_lo: a.group,
                    a: (wl, [0, mg * kg], 1, kg),
                    b: (dyl, [m * osp, mg * osp], osp, 1),
                    c: (col, [c * kl * osp, kg * osp], osp),
                    alpha: 1.0,
                    beta: 0.0,
                },
            );
            let mut un = vec![u(n_out), u(col.offset), u(ol.offset), 0, 0, 0, 0, 0];
            un.extend(w.to_u32s());
            let mut out = mm;
            out.push(Dispatch {
                shader: instantiate(COL2IM, &[WINDOW], &[("X", col.region), ("O", ol.region)], &[]),
                uniforms: un,
                workgroups: ew,
            });
            out
        }
        Op::ConvGradWeight { attrs: a, weight_shape } => {
            let (xv, dyv) = (node.inputs[0], node.inputs[1]);
            let dyl = loc(dyv);
            let (xs, dys) = (shape(xv), shape(dyv));
            let w = Window3::new(&xs[2..], &dys[2..], &a.kernel, &a.strides, &a.dilations, &a.pads_begin, &a.pads_end);
            let (n, c, m) = (xs[0], xs[1], weight_shape[0]);
            let (osp, kl) = (w.output_len(), w.kernel_len());
            let (cg, mg) = (c / a.group, m / a.group);
            let kg = cg * kl;
            let mut out = Vec::new();
            let cols = if is_pointwise(a) {
                xl
            } else {
                let at =
                    plan.scratch[i].ok_or_else(|| EngineError::Unsupported("conv gradient without scratch".into()))?;
                let col = at;
                let total = n * c * kl * osp;
                let mut un = vec![u(total), u(xl.offset), u(col.offset), 0, 0, 0, 0, 0];
                un.extend(w.to_u32s());
                out.push(Dispatch {
                    shader: instantiate(IM2COL, &[WINDOW], &[("X", xl.region), ("O", col.region)], &[]),
                    uniforms: un,
                    workgroups: grid(total, ELEMENTWISE_WG, t.max_groups),
                });
                col
            };
            // dW[g] (mg x kg) += dy[n, g] (mg x osp) @ col[n, g]^T (osp x kg), one sample at a time.
            for b in 0..n {
                out.extend(matmul_dispatches(
                    t,
                    MatMulCall {
                        m: mg,
                        n: kg,
                        k: osp,
                        batch_hi: 1,
                        batch_lo: a.group,
                        a: (Location { region: dyl.region, offset: dyl.offset + b * m * osp }, [0, mg * osp], osp, 1),
                        b: (
                            Location { region: cols.region, offset: cols.offset + b * c * kl * osp },
                            [0, kg * osp],
                            1,
                            osp,
                        ),
                        c: (ol, [0, mg * kg], kg),
                        alpha: 1.0,
                        beta: if b == 0 { 0.0 } else { 1.0 },
                    },
                ));
            }
            out
        }
        Op::PoolGrad(p) => {
            let s = shape(x0);
            let dyv = node.inputs[1];
            let dyl = loc(dyv);
            let w = Window3::new(
                &s[2..],
                &shape(dyv)[2..],
                &p.kernel,
                &p.strides,
                &p.dilations,
                &p.pads_begin,
                &p.pads_end,
            );
            let kind = match p.kind {
                PoolKind::Max => 0,
                PoolKind::Average { count_include_pad: false } => 1,
                PoolKind::Average { count_include_pad: true } => 2,
            };
            let mut un = vec![u(n_out), u(xl.offset), u(dyl.offset), u(ol.offset), kind, 0, 0, 0];
            un.extend(w.to_u32s());
            vec![Dispatch {
                shader: instantiate(
                    POOL_GRAD,
                    &[WINDOW],
                    &[("X", xl.region), ("DY", dyl.region), ("O", ol.region)],
                    &[],
                ),
                uniforms: un,
                workgroups: ew,
            }]
        }
        Op::Loss(kind) | Op::Accuracy(kind) | Op::LossGrad(kind) => {
            let (pv, tv, wv) = (node.inputs[0], node.inputs[1], node.inputs[2]);
            let ps = shape(pv);
            let rows = ps[0];
            let width = numel(ps) / rows.max(1);
            let (entry, mode) = match node.op {
                Op::Loss(_) => ("reduce_rows", 0),
                Op::Accuracy(_) => ("reduce_rows", 1),
                _ => ("grad_rows", 0),
            };
            let template = LOSS.replace(&format!("fn {entry}("), "fn main(");
            let shader = instantiate(
                &template,
                &[],
                &[("P", loc(pv).region), ("T", loc(tv).region), ("W", loc(wv).region), ("O", ol.region)],
                &[("KIND", loss_code(*kind).to_string()), ("MODE", mode.to_string())],
            );
            let workgroups = if entry == "grad_rows" { [rows.div_ceil(64) as u32, 1, 1] } else { [1, 1, 1] };
            vec![Dispatch {
                shader,
                uniforms: vec![
                    u(rows),
                    u(width),
                    u(loc(pv).offset),
                    u(loc(tv).offset),
                    u(loc(wv).offset),
                    u(ol.offset),
                ],
                workgroups,
            }]
        }
    })
}

/// The optimizer's dispatch over the trainable prefix (`n` elements); its uniforms from word 2 on
/// change every step ([`crate::optimizer::Optimizer::uniform_scalars`]).
pub fn optimizer_dispatch(t: Target, optimizer: &crate::optimizer::Optimizer, n: usize) -> Dispatch {
    let mut uniforms = vec![u(n), 0];
    uniforms.extend(optimizer.uniform_scalars(1).iter().map(|x| x.to_bits()));
    let mut operands = vec![("P", Region::Params), ("G", Region::Grads)];
    if optimizer.state_slots() > 0 {
        operands.push(("S", Region::OptState));
    }
    Dispatch {
        shader: instantiate(OPTIMIZER, &[], &operands, &[("BODY", optimizer.wgsl_body())]),
        uniforms,
        workgroups: grid(n, ELEMENTWISE_WG, t.max_groups),
    }
}

/// Operands of a (two-level batched) matrix product: each operand's location, its batch strides
/// (outer, inner), and row/column strides.
#[derive(Clone, Copy)]
pub struct MatMulCall {
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// Inner size.
    pub k: usize,
    /// Outer batch count.
    pub batch_hi: usize,
    /// Inner batch count (groups).
    pub batch_lo: usize,
    /// A: location, batch strides, row stride, column stride.
    pub a: (Location, [usize; 2], usize, usize),
    /// B: location, batch strides, row stride, column stride.
    pub b: (Location, [usize; 2], usize, usize),
    /// C: location, batch strides, row stride (columns are contiguous).
    pub c: (Location, [usize; 2], usize),
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of the existing C added (0 to overwrite).
    pub beta: f32,
}

/// Longest inner dimension one product dispatch takes on a CPU adapter; longer ones are split
/// into dispatches that accumulate (lavapipe stops loops after 65,535 iterations per invocation).
pub const SPLIT_K: usize = 16_384;

/// The dispatches of a matrix product (one, or several accumulating over K on CPU adapters).
pub fn matmul_dispatches(t: Target, mc: MatMulCall) -> Vec<Dispatch> {
    if !t.cpu_adapter || mc.k <= SPLIT_K {
        return vec![matmul_dispatch(t, mc)];
    }
    let mut out = Vec::new();
    let mut k0 = 0;
    while k0 < mc.k {
        let k = SPLIT_K.min(mc.k - k0);
        let (a, b) = (mc.a, mc.b);
        let part = MatMulCall {
            k,
            a: (Location { region: a.0.region, offset: a.0.offset + k0 * a.3 }, a.1, a.2, a.3),
            b: (Location { region: b.0.region, offset: b.0.offset + k0 * b.2 }, b.1, b.2, b.3),
            beta: if k0 == 0 { mc.beta } else { 1.0 },
            ..mc
        };
        out.push(matmul_dispatch(t, part));
        k0 += k;
    }
    out
}

/// The dispatch of a matrix product.
pub fn matmul_dispatch(t: Target, mc: MatMulCall) -> Dispatch {
    let batch = mc.batch_hi * mc.batch_lo;
    let cfg = t.matmul_tile.or_else(tile_override).unwrap_or_else(|| choose_tile(mc.m, mc.n, batch, t.cpu_adapter));
    let template = template_for(cfg);
    let (gx, gy) = matmul_grid(cfg, mc.m, mc.n);
    let (a, b, c) = (mc.a, mc.b, mc.c);
    let uniforms = vec![
        u(mc.m),
        u(mc.n),
        u(mc.k),
        u(mc.batch_lo.max(1)),
        u(a.0.offset),
        u(a.1[0]),
        u(a.1[1]),
        u(a.2),
        u(a.3),
        u(b.0.offset),
        u(b.1[0]),
        u(b.1[1]),
        u(b.2),
        u(b.3),
        u(c.0.offset),
        u(c.1[0]),
        u(c.1[1]),
        u(c.2),
        mc.alpha.to_bits(),
        mc.beta.to_bits(),
    ];
    Dispatch {
        shader: instantiate(&template, &[], &[("A", a.0.region), ("B", b.0.region), ("C", c.0.region)], &[]),
        uniforms,
        workgroups: [gx, gy, batch as u32],
    }
}
