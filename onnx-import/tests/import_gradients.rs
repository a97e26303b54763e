//! Imported graphs trained through: the gradient autodiff builds for an imported model's float
//! initializers (trainable parameters) against central finite differences in f64 on the CPU
//! reference (`CpuExecutor<f64>`), as `engine/tests/finite_differences.rs` does for single engine
//! ops. The loss is the mean squared error against a random target; the analytic gradient is read
//! back from one SGD step with learning rate 1 (g = p_before - p_after). Step h = 1e-6; tolerance
//! 1e-6 of the parameter's largest gradient.
//!
//! The same training step on the WGSL executor updates the parameters as the CPU executor does in
//! f32 (1e-4 of the largest update).
//!
//! Ops the importer decomposes (Resize's gather, weights and sum; the losses, LpPool, LRN,
//! MeanVarianceNormalization, CenterCropPad, SwiGLU, Attention, RotaryEmbedding) or unrolls (Loop,
//! Scan) are checked here end to end: a parameter (`w` added to, or `s` multiplied with, the input
//! `x`) sits before the op, so its gradient is the op's input gradient; every float initializer
//! of these models is trained (`ImportOptions::trainable`).

mod common;

use common::*;
use std::sync::Arc;

use distk_engine::autodiff::{TrainingSpec, build_eval_graph, build_training_graph};
use distk_engine::cpu::CpuExecutor;
use distk_engine::optimizer::{Optimizer, OptimizerKind};
use distk_engine::wgpu_exec::{PipelineCache, WgpuExecutor, device};
use distk_engine::{Executor, Graph, LossKind};
use distk_onnx::{ImportOptions, OnnxModel, import_with};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tract_onnx::pb;

const H: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;

/// Checks every trainable parameter's gradient of `bytes` (input `x` of `[n] + x_dims`).
fn check_gradients(what: &str, bytes: Vec<u8>, n: usize, x_dims: &[usize]) {
    let m = OnnxModel::from_bytes(bytes, what).unwrap_or_else(|e| panic!("{what}: {e}"));
    // Every float initializer trains here (the op's own constants too, which the importer would
    // otherwise freeze), so each gets its gradient checked.
    let all: Vec<String> = distk_onnx::trainable::decide(&m).into_iter().map(|d| d.name).collect();
    let options = ImportOptions { trainable: all, ..Default::default() };
    let g = import_with(&m, n, &options).unwrap_or_else(|e| panic!("{what}: {e}")).graph;
    let prediction = *g.outputs.first().expect("an output");
    let shape = g.shape(prediction).to_vec();
    let sgd = Optimizer {
        kind: OptimizerKind::Sgd { momentum: 0.0, nesterov: false },
        learning_rate: 1.0,
        weight_decay: None,
    };
    let spec =
        TrainingSpec { loss: LossKind::MeanSquaredError, prediction, target_shape: shape.clone(), optimizer: sgd };
    let train = build_training_graph(g.clone(), &spec).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!train.layout.slots.is_empty(), "{what}: no trainable parameter");
    let eval = build_eval_graph(g, LossKind::MeanSquaredError, prediction, shape.clone()).unwrap();

    let mut rng = StdRng::seed_from_u64(what.len() as u64);
    let numel = |s: &[usize]| s.iter().product::<usize>();
    let mut x_shape = vec![n];
    x_shape.extend_from_slice(x_dims);
    let x: Vec<f64> = (0..numel(&x_shape)).map(|_| rng.random_range(-2.0..2.0)).collect();
    let target: Vec<f64> = (0..numel(&shape)).map(|_| rng.random_range(-1.0..1.0)).collect();
    // One weight per row of the prediction (a loss reduced over the batch has one row).
    let rows = vec![1.0f64; shape.first().copied().unwrap_or(1)];
    let p0: Vec<f64> = train.initial_params.iter().map(|&v| v as f64).collect();
    let mut t = CpuExecutor::<f64>::new(train.clone());
    t.run_real(&[&x, &target, &rows]).unwrap_or_else(|e| panic!("{what}: {e}"));
    let p1 = t.params_real().to_vec();
    let mut e = CpuExecutor::<f64>::new(eval);
    let mut loss_at = |p: &[f64]| {
        e.set_params_real(p).unwrap();
        e.run_real(&[&x, &target, &rows]).unwrap()[0][0]
    };
    wgsl_step_matches_cpu(what, &train, &x, &target, &rows);
    for slot in &train.layout.slots {
        let analytic: Vec<f64> = (slot.offset..slot.offset + slot.len).map(|i| p0[i] - p1[i]).collect();
        let scale = analytic.iter().fold(0.0f64, |m, &v| m.max(v.abs())).max(1e-3);
        assert!(scale > 1e-3, "{what}: the gradient of {} is (nearly) zero", slot.name);
        for (k, &a) in analytic.iter().enumerate() {
            let mut p = p0.clone();
            p[slot.offset + k] += H;
            let up = loss_at(&p);
            p[slot.offset + k] -= 2.0 * H;
            let down = loss_at(&p);
            let numeric = (up - down) / (2.0 * H);
            let err = (numeric - a).abs() / scale;
            assert!(
                err <= TOLERANCE,
                "{what}: d/d{}[{k}] analytic {a} numeric {numeric} (error {err:e} of {scale})",
                slot.name
            );
        }
    }
}

/// One SGD step of `train` on the WGSL executor against the CPU executor, both in f32.
fn wgsl_step_matches_cpu(what: &str, train: &Graph, x: &[f64], target: &[f64], rows: &[f64]) {
    let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
    let (x, target, rows) = (f(x), f(target), f(rows));
    let inputs: [&[f32]; 3] = [&x, &target, &rows];
    let n = train.initial_params.len();
    let mut cpu = CpuExecutor::<f32>::new(train.clone());
    cpu.run(&inputs).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut want = vec![0.0f32; n];
    cpu.read_params(&mut want).unwrap();
    let ctx = Arc::new(device::open(None).unwrap_or_else(|e| panic!("{e} (scripts/setup.sh installs lavapipe)")));
    let mut gpu =
        WgpuExecutor::new(ctx, train.clone(), &mut PipelineCache::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
    gpu.run(&inputs).unwrap_or_else(|e| panic!("{what} on WGSL: {e}"));
    let mut got = vec![0.0f32; n];
    gpu.read_params(&mut got).unwrap();
    let step: Vec<f32> = train.initial_params.iter().zip(&want).map(|(a, b)| a - b).collect();
    let got_step: Vec<f32> = train.initial_params.iter().zip(&got).map(|(a, b)| a - b).collect();
    let e = rel_err(&got_step, &step);
    assert!(e <= 1e-4, "{what}: the WGSL step differs from the CPU step by {e:e} of the largest update");
}

/// `y = Resize(x + w)` on `[N, 2, 3, 4]`, `w` a trainable `[2, 3, 4]`.
fn resize_model(
    opset: i64,
    attrs: Vec<tract_onnx::pb::AttributeProto>,
    inputs: &[&str],
    extra: Vec<tract_onnx::pb::TensorProto>,
) -> Vec<u8> {
    let dims = [2, 3, 4];
    let mut ins = vec!["xw"];
    ins.extend_from_slice(inputs);
    let nodes = vec![node("Add", &["x", "w"], "xw", vec![]), node("Resize", &ins, "y", attrs)];
    let mut inits = vec![f32_tensor("w", &dims, &weights(24, 7))];
    inits.extend(extra);
    model(opset, &dims, nodes, inits)
}

#[test]
fn resize_trains_through_every_mode() {
    let scales = |v: &[f32]| f32_tensor("s", &[v.len()], v);
    // Linear (up and down), cubic with antialias, nearest, and tf_crop_and_resize's extrapolated
    // rows (no gradient there).
    let cases = [
        ("linear", resize_model(13, vec![attr_s("mode", "linear")], &["", "s"], vec![scales(&[1.0, 1.0, 1.7, 0.75])])),
        (
            "cubic antialias",
            resize_model(
                18,
                vec![attr_s("mode", "cubic"), attr_i("antialias", 1), attr_ints("axes", &[2, 3])],
                &["", "s"],
                vec![scales(&[0.6, 0.5])],
            ),
        ),
        (
            "nearest",
            resize_model(
                13,
                vec![attr_s("mode", "nearest"), attr_s("coordinate_transformation_mode", "asymmetric")],
                &["", "s"],
                vec![scales(&[1.0, 1.0, 1.5, 0.5])],
            ),
        ),
        (
            "tf_crop_and_resize",
            resize_model(
                13,
                vec![
                    attr_s("mode", "linear"),
                    attr_s("coordinate_transformation_mode", "tf_crop_and_resize"),
                    attr_f("extrapolation_value", 0.5),
                ],
                &["roi", "", "z"],
                vec![
                    f32_tensor("roi", &[8], &[0.0, 0.0, 0.2, -0.3, 1.0, 1.0, 0.9, 1.4]),
                    i64_tensor("z", &[2, 2, 4, 5]),
                ],
            ),
        ),
    ];
    for (what, bytes) in cases {
        check_gradients(&format!("Resize {what}"), bytes, 2, &[2, 3, 4]);
    }
}

fn i64_nd(name: &str, dims: &[usize], data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// A model over x `[2] + dims`: `a = x * s`, then `op_nodes` (reading `a`, writing `o`), then `o`
/// flattened to `[1, n]` as `y`.
fn model_of(opset: i64, dims: &[usize], op_nodes: Vec<pb::NodeProto>, mut inits: Vec<pb::TensorProto>) -> Vec<u8> {
    let n: usize = dims.iter().product();
    inits.push(f32_tensor("s", dims, &weights(n, 7).iter().map(|w| 1.0 + 0.5 * w).collect::<Vec<_>>()));
    inits.push(i64_tensor("flat", &[1, -1]));
    let mut nodes = vec![node("Mul", &["x", "s"], "a", vec![])];
    nodes.extend(op_nodes);
    nodes.push(node("Reshape", &["o", "flat"], "y", vec![]));
    model(opset, dims, nodes, inits)
}

/// LSTM and GRU (both reset forms) with rows shorter than the sequence (`sequence_lens`), forward
/// and reverse: the held states, zeroed outputs and fused cells (LstmCell; GruCell for
/// linear_before_reset) train by autodiff like the rest of the unrolled layer.
#[test]
fn recurrent_layers_with_sequence_lens_train_by_autodiff() {
    let (h, i) = (2usize, 2usize);
    for (op, gates, linear_before_reset) in [("LSTM", 4, 0), ("GRU", 3, 0), ("GRU", 3, 1)] {
        for direction in ["forward", "reverse"] {
            let inits = vec![
                f32_tensor("W", &[1, gates * h, i], &weights(gates * h * i, 90)),
                f32_tensor("R", &[1, gates * h, h], &weights(gates * h * h, 91)),
                f32_tensor("B", &[1, 2 * gates * h], &weights(2 * gates * h, 92)),
                pb::TensorProto {
                    name: "L".into(),
                    dims: vec![3],
                    data_type: 6,
                    int32_data: vec![4, 2, 3],
                    ..Default::default()
                },
            ];
            let mut layer = node(
                op,
                &["a", "W", "R", "B", "L"],
                "Y",
                vec![attr_i("hidden_size", h as i64), attr_s("direction", direction)],
            );
            if op == "GRU" {
                layer.attribute.push(attr_i("linear_before_reset", linear_before_reset));
            }
            layer.output.push("Yh".into());
            let flat = i64_tensor("flat_y", &[-1]);
            let nodes = vec![
                layer,
                node("Reshape", &["Y", "flat_y"], "yf", vec![]),
                node("Reshape", &["Yh", "flat_y"], "yhf", vec![]),
                node("Concat", &["yf", "yhf"], "o", vec![attr_i("axis", 0)]),
            ];
            let mut inits = inits;
            inits.push(flat);
            check_gradients(
                &format!("{op} {direction} with sequence_lens"),
                model_of(13, &[3, i], nodes, inits),
                4,
                &[3, i],
            );
        }
    }
}

#[test]
fn decomposed_ops_train_by_autodiff() {
    // The losses over a = x * s, [2, 4, 3]; the class weights are trainable too.
    let t = || i64_nd("t", &[2, 3], &[0, -1, 3, 2, 1, -1]);
    let w = || f32_tensor("w", &[4], &[0.5, 1.5, 0.75, 2.0]);
    for (op, reduction, ii) in [
        ("NegativeLogLikelihoodLoss", "mean", -1),
        ("NegativeLogLikelihoodLoss", "sum", 2),
        ("SoftmaxCrossEntropyLoss", "none", -1),
        ("SoftmaxCrossEntropyLoss", "mean", 3),
    ] {
        let attrs = vec![attr_s("reduction", reduction), attr_i("ignore_index", ii)];
        let nodes = vec![node(op, &["a", "t", "w"], "o", attrs)];
        check_gradients(&format!("{op} {reduction}"), model_of(13, &[4, 3], nodes, vec![t(), w()]), 2, &[4, 3]);
    }
    let lp = vec![
        attr_ints("kernel_shape", &[2, 2]),
        attr_ints("pads", &[1, 0, 0, 1]),
        attr_i("ceil_mode", 1),
        attr_ints("strides", &[2, 2]),
        attr_i("p", 3),
    ];
    check_gradients("LpPool", model_of(18, &[2, 3, 4], vec![node("LpPool", &["a"], "o", lp)], vec![]), 2, &[2, 3, 4]);
    let lrn = vec![attr_i("size", 3), attr_f("alpha", 0.5), attr_f("bias", 1.5)];
    check_gradients("LRN", model_of(13, &[4, 2, 2], vec![node("LRN", &["a"], "o", lrn)], vec![]), 2, &[4, 2, 2]);
    let mvn = vec![node("MeanVarianceNormalization", &["a"], "o", vec![])];
    check_gradients("MeanVarianceNormalization", model_of(13, &[3, 2, 2], mvn, vec![]), 2, &[3, 2, 2]);
    let crop = vec![node("CenterCropPad", &["a", "shape"], "o", vec![attr_ints("axes", &[1, 2])])];
    check_gradients("CenterCropPad", model_of(18, &[5, 4], crop, vec![i64_tensor("shape", &[3, 7])]), 2, &[5, 4]);
    let b = f32_tensor("b", &[2, 3, 4], &weights(24, 8));
    let swiglu = vec![node("SwiGLU", &["a", "b"], "o", vec![attr_f("alpha", 1.5)])];
    check_gradients("SwiGLU", model_of(28, &[3, 4], swiglu, vec![b]), 2, &[3, 4]);

    // Attention: causal self-attention in 2 heads with a softcap; grouped-query attention of
    // trainable projections (2 query heads over 1 key/value head).
    let attrs =
        vec![attr_i("q_num_heads", 2), attr_i("kv_num_heads", 2), attr_i("is_causal", 1), attr_f("softcap", 3.0)];
    let attention = vec![node("Attention", &["a", "a", "a"], "o", attrs)];
    check_gradients("Attention causal", model_of(23, &[4, 6], attention, vec![]), 2, &[4, 6]);
    let nodes = vec![
        node("MatMul", &["a", "wq"], "q", vec![]),
        node("MatMul", &["a", "wk"], "k", vec![]),
        node("MatMul", &["a", "wv"], "v", vec![]),
        node("Attention", &["q", "k", "v"], "o", vec![attr_i("q_num_heads", 2), attr_i("kv_num_heads", 1)]),
    ];
    let inits = vec![
        f32_tensor("wq", &[6, 4], &weights(24, 11)),
        f32_tensor("wk", &[6, 2], &weights(12, 12)),
        f32_tensor("wv", &[6, 2], &weights(12, 13)),
    ];
    check_gradients("Attention grouped-query", model_of(23, &[3, 6], nodes, inits), 2, &[3, 6]);
    // RotaryEmbedding: 2 heads of 4 features, the first 2 rotated, trainable angle caches.
    let inits = vec![
        f32_tensor("cos", &[5, 1], &[1.0, 0.5, -0.25, 0.75, 0.1]),
        f32_tensor("sin", &[5, 1], &[0.0, 0.8, 0.9, -0.6, 0.3]),
        i64_nd("ids", &[2, 3], &[0, 1, 2, 4, 3, 1]),
    ];
    let attrs = vec![attr_i("num_heads", 2), attr_i("rotary_embedding_dim", 2)];
    let rotary = vec![node("RotaryEmbedding", &["a", "cos", "sin", "ids"], "o", attrs)];
    check_gradients("RotaryEmbedding", model_of(23, &[3, 8], rotary, inits), 2, &[3, 8]);
    // Loop: three steps of h = tanh(h W + 0.1 i) from h = a, the steps stacked; W's gradient adds up
    // over the unrolled iterations.
    let h: &[Option<usize>] = &[Some(2), Some(3)];
    let mut body = subgraph(
        &[("i", &[]), ("c", &[]), ("h", h)],
        &[("c_out", &[]), ("h2", h), ("scan", h)],
        vec![
            node("Identity", &["c"], "c_out", vec![]),
            node("Cast", &["i"], "fi", vec![attr_i("to", 1)]),
            node("Mul", &["fi", "tenth"], "bias", vec![]),
            node("MatMul", &["h", "wl"], "hw", vec![]),
            node("Add", &["hw", "bias"], "pre", vec![]),
            node("Tanh", &["pre"], "h2", vec![]),
            node("Identity", &["h2"], "scan", vec![]),
        ],
    );
    for k in [0, 1] {
        body.input[k].r#type = None;
    }
    body.output[0].r#type = None;
    let mut lp = node("Loop", &["m", "", "a"], "last", vec![attr_g("body", body)]);
    lp.output = vec!["last".into(), "stacked".into()];
    let nodes = vec![lp, node("Add", &["stacked", "last"], "o", vec![])];
    let mut m = i64_nd("m", &[], &[3]);
    m.dims.clear();
    let inits = vec![m, f32_tensor("wl", &[3, 3], &weights(9, 14)), f32_tensor("tenth", &[], &[0.1])];
    check_gradients("Loop", model_of(13, &[3], nodes, inits), 2, &[3]);
    // Scan over axis 1, backwards: s = s * v + x_t, scan output s.
    let b: &[Option<usize>] = &[Some(2), Some(3)];
    let body = subgraph(
        &[("s", b), ("xt", b)],
        &[("s2", b), ("out", b)],
        vec![
            node("Mul", &["s", "v"], "sv", vec![]),
            node("Add", &["sv", "xt"], "s2", vec![]),
            node("Identity", &["s2"], "out", vec![]),
        ],
    );
    let attrs = vec![
        attr_g("body", body),
        attr_i("num_scan_inputs", 1),
        attr_ints("scan_input_axes", &[1]),
        attr_ints("scan_input_directions", &[1]),
    ];
    let mut scan = node("Scan", &["s0", "a"], "last", attrs);
    scan.output = vec!["last".into(), "seq".into()];
    let nodes = vec![
        node("ReduceMean", &["a"], "s0", vec![attr_ints("axes", &[1]), attr_i("keepdims", 0)]),
        scan,
        node("Unsqueeze", &["last", "ax0"], "lu", vec![]),
        node("Add", &["seq", "lu"], "o", vec![]),
    ];
    let inits = vec![f32_tensor("v", &[3], &[0.5, -0.75, 0.9]), i64_tensor("ax0", &[0])];
    check_gradients("Scan", model_of(13, &[4, 3], nodes, inits), 2, &[4, 3]);
}
