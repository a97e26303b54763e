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
//! Ops the importer decomposes (Resize's gather, weights and sum) are checked here end to end: the
//! parameter `w` is added to the input `x` before the op, so its gradient is the op's input
//! gradient summed over the batch.

mod common;

use common::*;
use std::sync::Arc;

use distk_engine::autodiff::{TrainingSpec, build_eval_graph, build_training_graph};
use distk_engine::cpu::CpuExecutor;
use distk_engine::optimizer::{Optimizer, OptimizerKind};
use distk_engine::wgpu_exec::{PipelineCache, WgpuExecutor, device};
use distk_engine::{Executor, Graph, LossKind};
use distk_onnx::{OnnxModel, import};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const H: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;

/// Checks every trainable parameter's gradient of `bytes` (input `x` of `[n] + x_dims`).
fn check_gradients(what: &str, bytes: Vec<u8>, n: usize, x_dims: &[usize]) {
    let m = OnnxModel::from_bytes(bytes, what).unwrap_or_else(|e| panic!("{what}: {e}"));
    let g = import(&m, n).unwrap_or_else(|e| panic!("{what}: {e}")).graph;
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
    let rows = vec![1.0f64; n];
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
