//! Every WGSL kernel against the CPU reference on random shapes and values, including sizes of 1,
//! odd sizes and sizes that are not multiples of the tile. Tolerance: max abs diff / max abs value
//! <= 1e-5 (f32; matrix products sum in a different order on the two sides).

use std::sync::{Arc, Mutex, OnceLock};

use distk_engine::cpu::CpuExecutor;
use distk_engine::wgpu_exec::matmul::ALL_TILES;
use distk_engine::wgpu_exec::{ExecOptions, GpuContext, PipelineCache, WgpuExecutor, device};
use distk_engine::{
    BinaryOp, ConvAttrs, Executor, Graph, GraphBuilder, LossKind, Op, PoolAttrs, PoolKind, ReduceOp, UnaryOp,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOLERANCE: f64 = 1e-5;

fn gpu() -> (Arc<GpuContext>, &'static Mutex<PipelineCache>) {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    static CACHE: OnceLock<Mutex<PipelineCache>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        Arc::new(device::open(None).expect("a wgpu adapter (lavapipe: apt-get install mesa-vulkan-drivers)"))
    });
    (ctx.clone(), CACHE.get_or_init(|| Mutex::new(PipelineCache::default())))
}

fn random(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs())).max(1e-20);
    got.iter().zip(want).fold(0.0f64, |m, (&a, &b)| {
        if a.is_nan() && b.is_nan() || a == b { m } else { m.max((a as f64 - b as f64).abs()) }
    }) / scale
}

/// Runs `graph` on both executors with `inputs` and compares every output.
fn check(what: &str, graph: Graph, inputs: &[Vec<f32>]) {
    check_with(what, graph, inputs, ExecOptions::default());
}

fn check_with(what: &str, graph: Graph, inputs: &[Vec<f32>], options: ExecOptions) {
    let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let want = CpuExecutor::new(graph.clone()).run(&refs).unwrap();
    let (ctx, cache) = gpu();
    let mut exec =
        WgpuExecutor::with_options(ctx, graph, &mut cache.lock().unwrap_or_else(|e| e.into_inner()), options).unwrap();
    let got = exec.run(&refs).unwrap();
    for (g, w) in got.iter().zip(&want) {
        let e = rel_err(g, w);
        assert!(e <= TOLERANCE, "{what}: relative error {e:e}");
    }
}

/// A one-node graph with random inputs of the given shapes; `params` marks inputs that are parameters.
fn one_node(
    rng: &mut StdRng,
    op: Op,
    shapes: &[Vec<usize>],
    params: &[bool],
    lo: f32,
    hi: f32,
) -> (Graph, Vec<Vec<f32>>) {
    let mut b = GraphBuilder::new();
    let mut ids = Vec::new();
    let mut feeds = Vec::new();
    for (i, s) in shapes.iter().enumerate() {
        let data = random(rng, s.iter().product(), lo, hi);
        if params.get(i).copied().unwrap_or(false) {
            ids.push(b.param(&format!("p{i}"), s.clone(), data, true).unwrap());
        } else {
            ids.push(b.input(&format!("x{i}"), s.clone()));
            feeds.push(data);
        }
    }
    let y = b.node("op", op, &ids).unwrap();
    b.output(y);
    (b.finish(), feeds)
}

/// Batch dims of A and B, then m, k, n.
type MatMulCase = (Vec<usize>, Vec<usize>, usize, usize, usize);

#[test]
fn matmul_all_tiles_transposes_batches_and_odd_sizes() {
    let mut rng = StdRng::seed_from_u64(1);
    // (batch A, batch B, m, k, n), each run with every tile shape the executor can pick: sizes of 1,
    // odd sizes, and sizes below, at and above every tile.
    let mut cases: Vec<MatMulCase> = vec![
        (vec![], vec![], 1, 1, 1),
        (vec![], vec![], 257, 131, 257),
        (vec![], vec![], 65, 77, 200),
        (vec![], vec![], 33, 19, 40),
        (vec![], vec![], 7, 5, 9),
        (vec![], vec![], 128, 784, 256),
        (vec![3], vec![], 17, 33, 13),
        (vec![2, 3], vec![2, 3], 9, 16, 31),
        (vec![], vec![4], 5, 8, 3),
        // Longer than one dispatch's inner loop on CPU adapters: split over K and accumulated.
        (vec![], vec![], 2, 20_000, 3),
    ];
    for _ in 0..12 {
        let m = rng.random_range(1..200);
        let k = rng.random_range(1..150);
        let n = rng.random_range(1..200);
        cases.push((vec![], vec![], m, k, n));
    }
    for (ba, bb, m, k, n) in cases {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut sa = ba.clone();
            sa.extend(if ta { [k, m] } else { [m, k] });
            let mut sb = bb.clone();
            sb.extend(if tb { [n, k] } else { [k, n] });
            let alpha = if ta { 0.5 } else { 1.0 };
            let (g, x) = one_node(
                &mut rng,
                Op::MatMul { trans_a: ta, trans_b: tb, alpha },
                &[sa.clone(), sb.clone()],
                &[false, true],
                -1.0,
                1.0,
            );
            for tile in ALL_TILES {
                let what = format!("matmul {sa:?} x {sb:?} (trans {ta} {tb}) tile {tile:?}");
                check_with(&what, g.clone(), &x, ExecOptions { matmul_tile: Some(tile), ..Default::default() });
            }
        }
    }
}

#[test]
fn unary_ops_on_random_sizes() {
    let mut rng = StdRng::seed_from_u64(2);
    let ops = [
        UnaryOp::Relu,
        UnaryOp::LeakyRelu { alpha: 0.1 },
        UnaryOp::Elu { alpha: 0.7 },
        UnaryOp::Selu { alpha: 1.673_263_2, gamma: 1.050_701 },
        UnaryOp::Sigmoid,
        UnaryOp::HardSigmoid { alpha: 0.2, beta: 0.5 },
        UnaryOp::Tanh,
        UnaryOp::Softplus,
        UnaryOp::Exp,
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Clip { min: -0.5, max: 0.25 },
        UnaryOp::Clip { min: f32::NEG_INFINITY, max: 0.25 },
        UnaryOp::Identity,
    ];
    for op in ops {
        for n in [1usize, 7, 256, 1000, 4099] {
            let (g, x) = one_node(&mut rng, Op::Unary(op), &[vec![n]], &[], -6.0, 6.0);
            check(&format!("{op:?} n={n}"), g, &x);
        }
    }
    for op in [UnaryOp::Log, UnaryOp::Sqrt] {
        let (g, x) = one_node(&mut rng, Op::Unary(op), &[vec![3, 333]], &[], 0.01, 9.0);
        check(&format!("{op:?}"), g, &x);
    }
}

#[test]
fn elementwise_grid_spills_past_65535_workgroups() {
    // 4099 x 4097 outputs (more than 65,535 * 256) need a 2-D grid of workgroups; the inputs are small
    // so the whole graph stays within lavapipe's 128 MiB binding limit.
    let mut rng = StdRng::seed_from_u64(3);
    let (g, x) =
        one_node(&mut rng, Op::Binary(BinaryOp::Sub), &[vec![4099, 1], vec![1, 4097]], &[false, false], -1.0, 1.0);
    check("broadcast sub over a 2-D grid", g, &x);
}

#[test]
fn binary_ops_with_broadcasting() {
    let mut rng = StdRng::seed_from_u64(4);
    let shapes: &[(Vec<usize>, Vec<usize>)] = &[
        (vec![7], vec![7]),
        (vec![1], vec![5, 3]),
        (vec![4, 1, 3], vec![5, 1]),
        (vec![2, 3, 4, 5], vec![3, 1, 5]),
        (vec![33, 10], vec![10]),
        (vec![6, 1, 1, 7], vec![1, 5, 3, 1]),
        (vec![2, 2, 2, 2, 2, 2, 2], vec![2, 1, 2, 1, 2, 1, 2]),
        (vec![2, 3, 2, 3, 2, 3, 2, 3], vec![2, 1, 2, 1, 2, 1, 2, 1]),
    ];
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Min, BinaryOp::Max] {
        for (a, b) in shapes {
            let (g, x) = one_node(&mut rng, Op::Binary(op), &[a.clone(), b.clone()], &[false, false], 0.5, 2.0);
            check(&format!("{op:?} {a:?} {b:?}"), g, &x);
            let (g, x) = one_node(&mut rng, Op::Binary(op), &[b.clone(), a.clone()], &[true, false], -2.0, -0.5);
            check(&format!("{op:?} {b:?} {a:?}"), g, &x);
        }
    }
    let (g, x) = one_node(&mut rng, Op::Binary(BinaryOp::Pow), &[vec![5, 9], vec![9]], &[false, false], 0.1, 3.0);
    check("pow", g, &x);
    // Negative bases with integral exponents follow IEEE pow.
    let mut b = GraphBuilder::new();
    let a = b.input("a", vec![6]);
    let e = b.constant("e", vec![6], vec![2.0, 3.0, 2.0, 3.0, 0.0, 1.0]).unwrap();
    let y = b.node("pow", Op::Binary(BinaryOp::Pow), &[a, e]).unwrap();
    b.output(y);
    check("pow of negative bases", b.finish(), &[vec![-1.5, -1.5, -2.0, -0.5, -3.0, -3.0]]);
}

#[test]
fn softmax_and_log_softmax_along_every_axis() {
    let mut rng = StdRng::seed_from_u64(5);
    for shape in [vec![1, 1], vec![4, 10], vec![3, 5, 7], vec![2, 1000]] {
        for axis in 0..shape.len() {
            for log in [false, true] {
                let (g, x) =
                    one_node(&mut rng, Op::Softmax { axis, log }, std::slice::from_ref(&shape), &[], -8.0, 8.0);
                check(&format!("softmax {shape:?} axis {axis} log {log}"), g, &x);
            }
        }
    }
}

fn conv_attrs(nd: usize, k: usize, s: usize, d: usize, p: usize, group: usize) -> ConvAttrs {
    ConvAttrs {
        kernel: vec![k; nd],
        strides: vec![s; nd],
        dilations: vec![d; nd],
        pads_begin: vec![p; nd],
        pads_end: vec![p.saturating_sub(1); nd],
        group,
    }
}

#[test]
fn convolutions_in_1_2_and_3_spatial_dims() {
    let mut rng = StdRng::seed_from_u64(6);
    // (spatial dims, batch, in channels, out channels, size, kernel, stride, dilation, pad, group, bias)
    let cases = [
        (1, 2, 3, 4, 11, 3, 1, 1, 0, 1, true),
        (1, 1, 4, 6, 9, 2, 2, 2, 2, 2, false),
        (2, 2, 1, 8, 12, 3, 1, 1, 0, 1, true),
        (2, 3, 6, 4, 9, 3, 2, 1, 1, 2, true),
        (2, 1, 4, 4, 7, 3, 1, 2, 2, 4, true),
        (2, 2, 5, 3, 6, 1, 1, 1, 0, 1, true),
        (2, 2, 3, 5, 8, 1, 2, 1, 0, 1, false),
        (3, 1, 2, 3, 5, 3, 1, 1, 1, 1, true),
        (3, 2, 2, 2, 6, 2, 2, 1, 0, 2, false),
    ];
    for (nd, n, c, m, size, k, s, d, p, group, bias) in cases {
        let attrs = conv_attrs(nd, k, s, d, p, group);
        let mut x = vec![n, c];
        x.extend(vec![size; nd]);
        let mut w = vec![m, c / group];
        w.extend(vec![k; nd]);
        let mut shapes = vec![x.clone(), w];
        if bias {
            shapes.push(vec![m]);
        }
        let (g, feeds) = one_node(&mut rng, Op::Conv(attrs.clone()), &shapes, &[false, true, true], -1.0, 1.0);
        check(&format!("conv {x:?} {attrs:?}"), g, &feeds);
    }
}

#[test]
fn pooling_max_and_average_with_padding_and_ceil_mode() {
    let mut rng = StdRng::seed_from_u64(7);
    for nd in 1..=3 {
        for kind in [
            PoolKind::Max,
            PoolKind::Average { count_include_pad: false },
            PoolKind::Average { count_include_pad: true },
        ] {
            for (k, s, p, ceil) in [(2, 2, 0, false), (3, 2, 1, false), (3, 2, 1, true), (2, 1, 0, true)] {
                let attrs = PoolAttrs {
                    kind,
                    kernel: vec![k; nd],
                    strides: vec![s; nd],
                    dilations: vec![1; nd],
                    pads_begin: vec![p; nd],
                    pads_end: vec![p; nd],
                    ceil_mode: ceil,
                };
                let mut x = vec![2, 3];
                x.extend(vec![7; nd]);
                let (g, feeds) = one_node(&mut rng, Op::Pool(attrs.clone()), &[x.clone()], &[], -1.0, 1.0);
                check(&format!("pool {x:?} {attrs:?}"), g, &feeds);
            }
        }
    }
}

#[test]
fn batch_norm_copy_ops_and_reductions() {
    let mut rng = StdRng::seed_from_u64(8);
    for x in [vec![3, 4], vec![2, 5, 7], vec![2, 3, 4, 5], vec![1, 2, 3, 2, 3]] {
        let c = x[1];
        let mut b = GraphBuilder::new();
        let xi = b.input("x", x.clone());
        let mut ins = vec![xi];
        for (i, (lo, hi)) in [(0.5, 2.0), (-1.0, 1.0), (-1.0, 1.0), (0.1, 2.0)].iter().enumerate() {
            ins.push(b.param(&format!("p{i}"), vec![c], random(&mut rng, c, *lo, *hi), false).unwrap());
        }
        let y = b.node("bn", Op::BatchNorm { epsilon: 1e-3, momentum: None }, &ins).unwrap();
        b.output(y);
        let feed = random(&mut rng, x.iter().product(), -3.0, 3.0);
        check(&format!("batchnorm {x:?}"), b.finish(), &[feed]);
    }
    for (shape, perm) in [
        (vec![5, 7], vec![1, 0]),
        (vec![2, 3, 4, 5], vec![0, 2, 3, 1]),
        (vec![1, 9, 1], vec![2, 0, 1]),
        (vec![2, 3, 2, 3, 2], vec![4, 3, 2, 1, 0]),
    ] {
        let (g, x) =
            one_node(&mut rng, Op::Transpose { perm: perm.clone() }, std::slice::from_ref(&shape), &[], -1.0, 1.0);
        check(&format!("transpose {shape:?} {perm:?}"), g, &x);
    }
    for (shapes, axis) in [
        (vec![vec![2, 3], vec![2, 5]], 1),
        (vec![vec![1, 4], vec![3, 4], vec![2, 4]], 0),
        (vec![vec![2, 3, 4], vec![2, 1, 4]], 1),
    ] {
        let params = vec![false, true, false];
        let (g, x) = one_node(&mut rng, Op::Concat { axis }, &shapes, &params, -1.0, 1.0);
        check(&format!("concat {shapes:?} axis {axis}"), g, &x);
    }
    for (shape, axes) in [
        (vec![7], vec![0]),
        (vec![4, 5, 6], vec![1]),
        (vec![4, 5, 6], vec![0, 2]),
        (vec![2, 3, 4, 5], vec![2, 3]),
        (vec![3, 1000], vec![1]),
    ] {
        for op in [ReduceOp::Sum, ReduceOp::Mean] {
            for keepdims in [false, true] {
                let (g, x) = one_node(
                    &mut rng,
                    Op::Reduce { op, axes: axes.clone(), keepdims },
                    std::slice::from_ref(&shape),
                    &[],
                    -1.0,
                    1.0,
                );
                check(&format!("{op:?} {shape:?} {axes:?}"), g, &x);
            }
        }
    }
    // Sums of ones count every element (lavapipe cuts long shader loops; the chunked passes must not).
    let mut b = GraphBuilder::new();
    let x = b.input("x", vec![32, 32, 26, 26]);
    let y = b.node("sum", Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 2, 3], keepdims: false }, &[x]).unwrap();
    b.output(y);
    let (ctx, cache) = gpu();
    let mut exec = WgpuExecutor::new(ctx, b.finish(), &mut cache.lock().unwrap_or_else(|e| e.into_inner())).unwrap();
    let out = exec.run(&[&vec![1.0; 32 * 32 * 26 * 26]]).unwrap().remove(0);
    assert!(out.iter().all(|&v| v == 21632.0), "{:?}", &out[..4]);
    // A reshape of a computed value aliases it; one of an input is copied.
    let mut b = GraphBuilder::new();
    let x = b.input("x", vec![4, 6]);
    let r = b.node("r", Op::Reshape { shape: vec![2, 12] }, &[x]).unwrap();
    let e = b.node("e", Op::Unary(UnaryOp::Exp), &[r]).unwrap();
    let r2 = b.node("r2", Op::Reshape { shape: vec![24] }, &[e]).unwrap();
    b.output(r2);
    let feed = random(&mut rng, 24, -1.0, 1.0);
    check("reshape chain", b.finish(), &[feed]);
}

#[test]
fn backward_ops_match_the_cpu_reference() {
    let mut rng = StdRng::seed_from_u64(9);
    for op in [
        UnaryOp::Relu,
        UnaryOp::LeakyRelu { alpha: 0.1 },
        UnaryOp::Elu { alpha: 0.7 },
        UnaryOp::Selu { alpha: 1.673_263_2, gamma: 1.050_701 },
        UnaryOp::Sigmoid,
        UnaryOp::HardSigmoid { alpha: 0.2, beta: 0.5 },
        UnaryOp::Tanh,
        UnaryOp::Softplus,
        UnaryOp::Exp,
        UnaryOp::Abs,
        UnaryOp::Clip { min: -0.5, max: 0.25 },
    ] {
        let (g, x) = one_node(&mut rng, Op::UnaryGrad(op), &[vec![3, 67], vec![3, 67]], &[], -4.0, 4.0);
        check(&format!("{op:?} grad"), g, &x);
    }
    for (shape, axis) in [(vec![4, 10], 1), (vec![3, 5, 7], 1), (vec![2, 9], 0)] {
        for log in [false, true] {
            let (g, x) =
                one_node(&mut rng, Op::SoftmaxGrad { axis, log }, &[shape.clone(), shape.clone()], &[], -1.0, 1.0);
            check(&format!("softmax grad {shape:?} {axis} {log}"), g, &x);
        }
    }
    let (g, x) = one_node(&mut rng, Op::Broadcast { shape: vec![4, 3, 5] }, &[vec![3, 1]], &[], -1.0, 1.0);
    check("broadcast", g, &x);
    let (g, x) = one_node(&mut rng, Op::Slice { axis: 1, start: 2, len: 3 }, &[vec![4, 7, 2]], &[], -1.0, 1.0);
    check("slice", g, &x);
    // Convolution gradients: (spatial dims, batch, in, out, size, kernel, stride, dilation, pad, group)
    for (nd, n, c, m, size, k, s, d, p, group) in [
        (2, 3, 1, 4, 8, 3, 1, 1, 0, 1),
        (2, 2, 4, 6, 7, 3, 2, 1, 1, 2),
        (1, 2, 3, 2, 9, 2, 2, 2, 1, 1),
        (2, 2, 3, 5, 5, 1, 1, 1, 0, 1),
        (3, 1, 2, 2, 5, 2, 1, 1, 1, 1),
    ] {
        let attrs = conv_attrs(nd, k, s, d, p, group);
        let mut xs = vec![n, c];
        xs.extend(vec![size; nd]);
        let mut ws = vec![m, c / group];
        ws.extend(vec![k; nd]);
        let out = Op::Conv(attrs.clone()).output_shape(&[&xs, &ws]).unwrap();
        let (g, f) = one_node(
            &mut rng,
            Op::ConvGradInput { attrs: attrs.clone(), input_shape: xs.clone() },
            &[out.clone(), ws.clone()],
            &[false, true],
            -1.0,
            1.0,
        );
        check(&format!("conv grad input {xs:?} {attrs:?}"), g, &f);
        let (g, f) = one_node(
            &mut rng,
            Op::ConvGradWeight { attrs: attrs.clone(), weight_shape: ws.clone() },
            &[xs.clone(), out.clone()],
            &[false, false],
            -1.0,
            1.0,
        );
        check(&format!("conv grad weight {xs:?} {attrs:?}"), g, &f);
    }
    for kind in
        [PoolKind::Max, PoolKind::Average { count_include_pad: false }, PoolKind::Average { count_include_pad: true }]
    {
        for (k, s, p) in [(2, 2, 0), (3, 2, 1), (3, 1, 1)] {
            let attrs = PoolAttrs {
                kind,
                kernel: vec![k; 2],
                strides: vec![s; 2],
                dilations: vec![1; 2],
                pads_begin: vec![p; 2],
                pads_end: vec![p; 2],
                ceil_mode: false,
            };
            let xs = vec![2, 3, 7, 6];
            let out = Op::Pool(attrs.clone()).output_shape(&[&xs]).unwrap();
            let (g, f) = one_node(&mut rng, Op::PoolGrad(attrs.clone()), &[xs.clone(), out], &[], -1.0, 1.0);
            check(&format!("pool grad {attrs:?}"), g, &f);
        }
    }
}

#[test]
fn losses_gradients_and_accuracy_match_the_cpu_reference() {
    let mut rng = StdRng::seed_from_u64(10);
    let (n, c) = (37, 10);
    for kind in [
        LossKind::SparseCategoricalLogits,
        LossKind::SparseCategoricalProbs,
        LossKind::CategoricalLogits,
        LossKind::CategoricalProbs,
        LossKind::BinaryLogits,
        LossKind::BinaryProbs,
        LossKind::MeanSquaredError,
        LossKind::MeanAbsoluteError,
    ] {
        let probs =
            matches!(kind, LossKind::SparseCategoricalProbs | LossKind::CategoricalProbs | LossKind::BinaryProbs);
        let pred: Vec<f32> = random(&mut rng, n * c, if probs { 0.01 } else { -3.0 }, if probs { 0.99 } else { 3.0 });
        let target: Vec<f32> = if kind.sparse_targets() {
            (0..n).map(|_| rng.random_range(0..c) as f32).collect()
        } else {
            (0..n * c)
                .map(|i| {
                    if matches!(kind, LossKind::MeanSquaredError | LossKind::MeanAbsoluteError) {
                        rng.random_range(-1.0..1.0)
                    } else {
                        (i % c == i / c % c) as i32 as f32
                    }
                })
                .collect()
        };
        let weight: Vec<f32> = (0..n).map(|i| if i < n - 5 { 1.0 } else { 0.0 }).collect();
        for op in [Op::Loss(kind), Op::LossGrad(kind), Op::Accuracy(kind)] {
            let mut b = GraphBuilder::new();
            let p = b.input("p", vec![n, c]);
            let t = b.input("t", if kind.sparse_targets() { vec![n] } else { vec![n, c] });
            let w = b.input("w", vec![n]);
            let y = b.node("op", op.clone(), &[p, t, w]).unwrap();
            b.output(y);
            check(&format!("{op:?}"), b.finish(), &[pred.clone(), target.clone(), weight.clone()]);
        }
    }
}
