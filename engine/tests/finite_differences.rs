//! Every backward rule against central finite differences in f64 on the CPU reference
//! (`CpuExecutor<f64>`). Each op's inputs are trainable parameters, the loss is mean(y^2) over its
//! output; the analytic gradient is read back from one SGD step with learning rate 1
//! (g = p_before - p_after). Step h = 1e-6; tolerance 1e-6 of the tensor's largest gradient
//! (the central difference's truncation error is O(h^2), its round-off about 1e-16 / h).

use distk_engine::autodiff::{TrainingSpec, build_eval_graph, build_training_graph};
use distk_engine::cpu::CpuExecutor;
use distk_engine::optimizer::{Optimizer, OptimizerKind};
use distk_engine::{BinaryOp, ConvAttrs, GraphBuilder, LossKind, Op, PoolAttrs, PoolKind, ReduceOp, UnaryOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const H: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;

fn check(what: &str, op: Op, shapes: &[Vec<usize>], lo: f32, hi: f32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut b = GraphBuilder::new();
    let ids: Vec<usize> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let data = (0..s.iter().product()).map(|_| rng.random_range(lo..hi)).collect();
            b.param(&format!("p{i}"), s.clone(), data, true).unwrap()
        })
        .collect();
    let y = b.node("op", op, &ids).unwrap();
    let n = b.shape(y).iter().product();
    let flat = b.node("flat", Op::Reshape { shape: vec![1, n] }, &[y]).unwrap();
    b.output(flat);
    let forward = b.finish();
    let sgd = Optimizer {
        kind: OptimizerKind::Sgd { momentum: 0.0, nesterov: false },
        learning_rate: 1.0,
        weight_decay: None,
    };
    let spec =
        TrainingSpec { loss: LossKind::MeanSquaredError, prediction: flat, target_shape: vec![1, n], optimizer: sgd };
    let train = build_training_graph(forward.clone(), &spec).unwrap();
    let eval = build_eval_graph(forward, LossKind::MeanSquaredError, flat, vec![1, n]).unwrap();
    let zeros = vec![0.0f64; n];
    let one = vec![1.0f64];
    let p0: Vec<f64> = train.initial_params.iter().map(|&x| x as f64).collect();
    let mut t = CpuExecutor::<f64>::new(train.clone());
    t.run_real(&[&zeros, &one]).unwrap();
    let p1 = t.params_real().to_vec();
    let mut e = CpuExecutor::<f64>::new(eval);
    for slot in &train.layout.slots {
        let analytic: Vec<f64> = (slot.offset..slot.offset + slot.len).map(|i| p0[i] - p1[i]).collect();
        let scale = analytic.iter().fold(0.0f64, |m, &v| m.max(v.abs())).max(1e-3);
        let picks: Vec<usize> = if slot.len <= 24 {
            (0..slot.len).collect()
        } else {
            (0..24).map(|_| rng.random_range(0..slot.len)).collect()
        };
        for k in picks {
            let mut p = p0.clone();
            p[slot.offset + k] += H;
            e.set_params_real(&p).unwrap();
            let up = e.run_real(&[&zeros, &one]).unwrap()[0][0];
            p[slot.offset + k] -= 2.0 * H;
            e.set_params_real(&p).unwrap();
            let down = e.run_real(&[&zeros, &one]).unwrap()[0][0];
            let numeric = (up - down) / (2.0 * H);
            let err = (numeric - analytic[k]).abs() / scale;
            assert!(
                err <= TOLERANCE,
                "{what}: d/d{}[{k}] analytic {} numeric {numeric} (error {err:e} of {scale})",
                slot.name,
                analytic[k]
            );
        }
    }
}

#[test]
fn matmul_and_elementwise_rules() {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta { vec![4, 3] } else { vec![3, 4] };
        let b = if tb { vec![5, 4] } else { vec![4, 5] };
        check(&format!("matmul {ta} {tb}"), Op::MatMul { trans_a: ta, trans_b: tb, alpha: 0.7 }, &[a, b], -1.0, 1.0, 1);
    }
    check(
        "batched matmul, shared B",
        Op::MatMul { trans_a: false, trans_b: false, alpha: 1.0 },
        &[vec![2, 3, 4], vec![4, 2]],
        -1.0,
        1.0,
        2,
    );
    check(
        "batched matmul",
        Op::MatMul { trans_a: false, trans_b: true, alpha: 1.0 },
        &[vec![2, 3, 4], vec![2, 5, 4]],
        -1.0,
        1.0,
        3,
    );
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Min, BinaryOp::Max]
    {
        check(&format!("{op:?}"), Op::Binary(op), &[vec![3, 4], vec![3, 4]], 0.5, 2.0, 4);
        check(&format!("{op:?} broadcast"), Op::Binary(op), &[vec![2, 3, 4], vec![3, 1]], 0.5, 2.0, 5);
    }
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
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Clip { min: -0.5, max: 0.5 },
        UnaryOp::Identity,
    ] {
        check(&format!("{op:?}"), Op::Unary(op), &[vec![4, 6]], -2.0, 2.0, 6);
    }
    check("Log", Op::Unary(UnaryOp::Log), &[vec![4, 6]], 0.5, 3.0, 7);
    check("Sqrt", Op::Unary(UnaryOp::Sqrt), &[vec![4, 6]], 0.5, 3.0, 8);
}

#[test]
fn softmax_shape_and_reduction_rules() {
    for log in [false, true] {
        check(&format!("softmax log {log}"), Op::Softmax { axis: 1, log }, &[vec![3, 5]], -2.0, 2.0, 9);
        check(&format!("softmax axis 0 log {log}"), Op::Softmax { axis: 0, log }, &[vec![3, 5, 2]], -2.0, 2.0, 10);
    }
    check("reshape", Op::Reshape { shape: vec![6, 2] }, &[vec![3, 4]], -1.0, 1.0, 11);
    check("transpose", Op::Transpose { perm: vec![2, 0, 1] }, &[vec![2, 3, 4]], -1.0, 1.0, 12);
    check("concat", Op::Concat { axis: 1 }, &[vec![2, 3], vec![2, 2], vec![2, 1]], -1.0, 1.0, 13);
    for op in [ReduceOp::Sum, ReduceOp::Mean] {
        for keepdims in [false, true] {
            check(
                &format!("{op:?} {keepdims}"),
                Op::Reduce { op, axes: vec![0, 2], keepdims },
                &[vec![2, 3, 4]],
                -1.0,
                1.0,
                14,
            );
        }
    }
}

#[test]
fn convolution_and_pooling_rules() {
    for (nd, stride, pad, dil, group) in [(2, 1, 0, 1, 1), (2, 2, 1, 1, 2), (1, 1, 1, 2, 1), (3, 1, 0, 1, 1)] {
        let attrs = ConvAttrs {
            kernel: vec![2; nd],
            strides: vec![stride; nd],
            dilations: vec![dil; nd],
            pads_begin: vec![pad; nd],
            pads_end: vec![pad; nd],
            group,
        };
        let mut x = vec![2, 4];
        x.extend(vec![5; nd]);
        let mut w = vec![4, 4 / group];
        w.extend(vec![2; nd]);
        check(&format!("conv {attrs:?}"), Op::Conv(attrs), &[x, w, vec![4]], -1.0, 1.0, 15);
    }
    for kind in
        [PoolKind::Max, PoolKind::Average { count_include_pad: false }, PoolKind::Average { count_include_pad: true }]
    {
        let attrs = PoolAttrs {
            kind,
            kernel: vec![2, 2],
            strides: vec![2, 1],
            dilations: vec![1, 1],
            pads_begin: vec![1, 0],
            pads_end: vec![1, 0],
            ceil_mode: false,
        };
        check(&format!("pool {kind:?}"), Op::Pool(attrs), &[vec![2, 3, 5, 4]], -1.0, 1.0, 16);
    }
}
