//! The gradients of ops the importer decomposes (the losses, LpPool, LRN, MeanVarianceNormalization,
//! CenterCropPad, SwiGLU, Attention, RotaryEmbedding) or unrolls (Loop, Scan) come from autodiff over the engine ops they become: each model feeds the
//! op `x * s` (`s` an initializer trained by `--trainable`, as are the op's own float initializers) and flattens its
//! output; the analytic gradient of mean(y^2), read back from one SGD step at learning rate 1 on
//! the CPU executor in f64, is checked against central finite differences (h 1e-6, tolerance 1e-6
//! of the tensor's largest gradient), as `engine/tests/finite_differences.rs` does per engine op.

mod common;

use common::*;
use distk_engine::LossKind;
use distk_engine::autodiff::{TrainingSpec, build_eval_graph, build_training_graph};
use distk_engine::cpu::CpuExecutor;
use distk_engine::optimizer::{Optimizer, OptimizerKind};
use distk_onnx::{ImportOptions, OnnxModel, import_with};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tract_onnx::pb;

const H: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;

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

fn check(what: &str, bytes: Vec<u8>, dims: &[usize]) {
    let m = OnnxModel::from_bytes(bytes, what).unwrap();
    // Every float initializer trains here (the op's own constants too), so each gets its gradient
    // checked.
    let all: Vec<String> = distk_onnx::trainable::decide(&m).into_iter().map(|d| d.name).collect();
    let options = ImportOptions { trainable: all, ..Default::default() };
    let forward = import_with(&m, 2, &options).unwrap_or_else(|e| panic!("{what}: {e}")).graph;
    let pred = forward.outputs[0];
    let shape = forward.shape(pred).to_vec();
    let sgd = Optimizer {
        kind: OptimizerKind::Sgd { momentum: 0.0, nesterov: false },
        learning_rate: 1.0,
        weight_decay: None,
    };
    let spec = TrainingSpec {
        loss: LossKind::MeanSquaredError,
        prediction: pred,
        target_shape: shape.clone(),
        optimizer: sgd,
    };
    let train = build_training_graph(forward.clone(), &spec).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!train.layout.slots.is_empty(), "{what}: no parameters");
    let eval = build_eval_graph(forward, LossKind::MeanSquaredError, pred, shape.clone()).unwrap();
    let mut rng = StdRng::seed_from_u64(what.len() as u64);
    let x: Vec<f64> = (0..2 * dims.iter().product::<usize>()).map(|_| rng.random_range(-2.0..2.0)).collect();
    let zeros = vec![0.0f64; shape.iter().product()];
    let one = vec![1.0f64];
    let p0: Vec<f64> = train.initial_params.iter().map(|&v| v as f64).collect();
    let mut t = CpuExecutor::<f64>::new(train.clone());
    t.run_real(&[&x, &zeros, &one]).unwrap_or_else(|e| panic!("{what}: {e}"));
    let p1 = t.params_real().to_vec();
    let mut e = CpuExecutor::<f64>::new(eval);
    for slot in &train.layout.slots {
        let analytic: Vec<f64> = (slot.offset..slot.offset + slot.len).map(|i| p0[i] - p1[i]).collect();
        let scale = analytic.iter().fold(0.0f64, |m, &v| m.max(v.abs())).max(1e-3);
        for (k, &a) in analytic.iter().enumerate() {
            let mut p = p0.clone();
            p[slot.offset + k] += H;
            e.set_params_real(&p).unwrap();
            let up = e.run_real(&[&x, &zeros, &one]).unwrap()[0][0];
            p[slot.offset + k] -= 2.0 * H;
            e.set_params_real(&p).unwrap();
            let down = e.run_real(&[&x, &zeros, &one]).unwrap()[0][0];
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
        check(&format!("{op} {reduction}"), model_of(13, &[4, 3], nodes, vec![t(), w()]), &[4, 3]);
    }
    let lp = vec![
        attr_ints("kernel_shape", &[2, 2]),
        attr_ints("pads", &[1, 0, 0, 1]),
        attr_i("ceil_mode", 1),
        attr_ints("strides", &[2, 2]),
        attr_i("p", 3),
    ];
    check("LpPool", model_of(18, &[2, 3, 4], vec![node("LpPool", &["a"], "o", lp)], vec![]), &[2, 3, 4]);
    let lrn = vec![attr_i("size", 3), attr_f("alpha", 0.5), attr_f("bias", 1.5)];
    check("LRN", model_of(13, &[4, 2, 2], vec![node("LRN", &["a"], "o", lrn)], vec![]), &[4, 2, 2]);
    let mvn = vec![node("MeanVarianceNormalization", &["a"], "o", vec![])];
    check("MeanVarianceNormalization", model_of(13, &[3, 2, 2], mvn, vec![]), &[3, 2, 2]);
    let crop = vec![node("CenterCropPad", &["a", "shape"], "o", vec![attr_ints("axes", &[1, 2])])];
    check("CenterCropPad", model_of(18, &[5, 4], crop, vec![i64_tensor("shape", &[3, 7])]), &[5, 4]);
    let b = f32_tensor("b", &[2, 3, 4], &weights(24, 8));
    let swiglu = vec![node("SwiGLU", &["a", "b"], "o", vec![attr_f("alpha", 1.5)])];
    check("SwiGLU", model_of(28, &[3, 4], swiglu, vec![b]), &[3, 4]);

    // Attention: causal self-attention in 2 heads with a softcap; grouped-query attention of
    // trainable projections (2 query heads over 1 key/value head).
    let attrs =
        vec![attr_i("q_num_heads", 2), attr_i("kv_num_heads", 2), attr_i("is_causal", 1), attr_f("softcap", 3.0)];
    let attention = vec![node("Attention", &["a", "a", "a"], "o", attrs)];
    check("Attention causal", model_of(23, &[4, 6], attention, vec![]), &[4, 6]);
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
    check("Attention grouped-query", model_of(23, &[3, 6], nodes, inits), &[3, 6]);
    // RotaryEmbedding: 2 heads of 4 features, the first 2 rotated, trainable angle caches.
    let inits = vec![
        f32_tensor("cos", &[5, 1], &[1.0, 0.5, -0.25, 0.75, 0.1]),
        f32_tensor("sin", &[5, 1], &[0.0, 0.8, 0.9, -0.6, 0.3]),
        i64_nd("ids", &[2, 3], &[0, 1, 2, 4, 3, 1]),
    ];
    let attrs = vec![attr_i("num_heads", 2), attr_i("rotary_embedding_dim", 2)];
    let rotary = vec![node("RotaryEmbedding", &["a", "cos", "sin", "ids"], "o", attrs)];
    check("RotaryEmbedding", model_of(23, &[3, 8], rotary, inits), &[3, 8]);
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
    check("Loop", model_of(13, &[3], nodes, inits), &[3]);
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
    check("Scan", model_of(13, &[4, 3], nodes, inits), &[4, 3]);
}
