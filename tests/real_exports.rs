//! The models of issue 10 as users export them (examples/gen/export_real_models.py: Keras 3 and
//! tf_keras + tf2onnx, PyTorch's exporters), against the original frameworks' own oracles in
//! tests/fixtures/real/<name>.json:
//!
//! - the forward pass on 8 test rows equals onnxruntime's, on the CPU and the WGSL executors
//!   (max abs diff / max abs value <= 1e-5);
//! - 5 plain-SGD steps (the sidecar's rate, batch 32, the first rows in order) give the framework's
//!   own per-step losses run in float64 from the same weights (Keras' `train_on_batch`, PyTorch's
//!   `cross_entropy` before `step`), on both executors (1e-4 relative);
//! - `distk-gpu run` with the framework's fit (Adam, the sidecar's rate, batch 32, no shuffling, the
//!   same epochs) ends within 2 points of the framework's test accuracy (CPU executor), and tract
//!   runs the trained export as the engine does (except the models it cannot run, listed).

mod common;

use std::path::{Path, PathBuf};

use common::{gpu, rel_max_err, root};
use distk_engine::Executor;
use distk_engine::cpu::CpuExecutor;
use distk_engine::wgpu_exec::{PipelineCache, WgpuExecutor};
use distk_gpu::data::{DataReader, FeatureColumns};
use distk_gpu::runtime::{DeviceChoice, Runtime};
use distk_gpu::training::{SessionConfig, TrainSession, parse_optimizer};
use distk_onnx::{ImportOptions, OnnxModel, import};
use serde_json::Value;

const FORWARD_TOLERANCE: f64 = 1e-5;
const STEP_TOLERANCE: f64 = 1e-4;

/// Models whose export lost a bias the framework trains, run as `inspect` advises (`run
/// --add-missing-biases`): PyTorch's dynamo exporter drops the attention's output-projection bias
/// (zeros at initialisation), which PyTorch then trains.
const ADD_MISSING_BIASES: &[&str] = &["torch_transformer"];

fn adds_biases(side: &Value) -> bool {
    ADD_MISSING_BIASES.iter().any(|n| side["model"].as_str() == Some(format!("{n}.onnx").as_str()))
}

/// Models whose steps are known to depart from their framework's, with the reason; the test fails
/// when one of them matches (so the list is kept true).
const KNOWN_STEP_DIFFERENCES: &[(&str, &str)] = &[];

fn fixtures() -> Vec<(String, Value)> {
    let dir = root().join("tests/fixtures/real");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/real")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 10, "the ten exported models of issue 10");
    out
}

fn model_path(side: &Value) -> PathBuf {
    root().join("tests/fixtures/real").join(side["model"].as_str().unwrap())
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32))
        .collect()
}

#[test]
fn forward_matches_onnxruntime_on_cpu_and_wgsl() {
    let ctx = gpu();
    let mut cache = PipelineCache::default();
    for (name, side) in fixtures() {
        let m = OnnxModel::load(&model_path(&side)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let rows = side["forward"]["rows"].as_u64().unwrap() as usize;
        let x = floats(&side["forward"]["x"]);
        let want = floats(&side["forward"]["y"]);
        let g = import(&m, rows).unwrap_or_else(|e| panic!("{name}: {e}")).graph;
        let cpu = CpuExecutor::new(g.clone()).run(&[&x]).unwrap_or_else(|e| panic!("{name}: {e}")).remove(0);
        let wgsl = WgpuExecutor::new(ctx.clone(), g, &mut cache)
            .and_then(|mut e| e.run(&[&x]))
            .unwrap_or_else(|e| panic!("{name} on WGSL: {e}"))
            .remove(0);
        let (e_cpu, e_wgsl) = (rel_max_err(&cpu, &want), rel_max_err(&wgsl, &want));
        eprintln!("{name}: forward error {e_cpu:.1e} (CPU), {e_wgsl:.1e} (WGSL)");
        assert!(e_cpu <= FORWARD_TOLERANCE, "{name}: CPU forward differs from onnxruntime by {e_cpu:e}");
        assert!(e_wgsl <= FORWARD_TOLERANCE, "{name}: WGSL forward differs from onnxruntime by {e_wgsl:e}");
    }
}

fn sgd_losses(side: &Value, device: DeviceChoice) -> Vec<f64> {
    let sgd = &side["sgd"];
    let batch = sgd["batch"].as_u64().unwrap() as usize;
    let steps = sgd["steps"].as_u64().unwrap() as usize;
    let m = OnnxModel::load(&model_path(side)).unwrap();
    let mut runtime = Runtime::open(device, None).unwrap();
    let opt = parse_optimizer("sgd", Some(sgd["lr"].as_f64().unwrap() as f32), "").unwrap();
    let config = SessionConfig {
        from_logits: side["from_logits"].as_bool(),
        import: ImportOptions { add_missing_biases: adds_biases(side), ..ImportOptions::default() },
        ..SessionConfig::new(opt)
    };
    let mut s = TrainSession::with_config(&m, &mut runtime, batch, &config).unwrap();
    let data = root().join(side["train"].as_str().unwrap());
    let mut reader = DataReader::open(&data, &FeatureColumns::parse("features"), Some("label"), batch).unwrap();
    (0..steps)
        .map(|_| {
            let rows = reader.next_rows().unwrap().unwrap();
            let labels: Vec<f32> = rows.labels.unwrap().iter().map(|&l| l as f32).collect();
            s.step(rows.count, &rows.features, &labels).unwrap().loss as f64
        })
        .collect()
}

#[test]
fn five_sgd_steps_match_the_frameworks_own_losses_on_cpu_and_wgsl() {
    let mut failures = Vec::new();
    for (name, side) in fixtures() {
        // The framework's steps in float64 from the same weights: its arithmetic without its own
        // rounding. Its float32 steps are printed beside them; TensorFlow's drift from its float64
        // ones by 3e-4 on keras_resnet_bn (its f32 BatchNormalization gradients are 1e-3 off).
        let losses = |key: &str| -> Vec<f64> {
            let v = side["sgd"][key].as_array().unwrap_or_else(|| panic!("{name}: no sgd.{key} (regenerate)"));
            v.iter().map(|v| v.as_f64().unwrap()).collect()
        };
        let (want, framework_f32) = (losses("losses_float64"), losses("losses"));
        let known = KNOWN_STEP_DIFFERENCES.iter().find(|(n, _)| *n == name);
        for device in [DeviceChoice::Cpu, DeviceChoice::Wgpu] {
            let got = sgd_losses(&side, device);
            eprintln!(
                "{name} on {device:?}: losses {got:.6?} (framework float64 {want:.6?}, float32 {framework_f32:.6?})"
            );
            let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs() / w.abs()).fold(0.0f64, f64::max);
            match known {
                Some((_, why)) if worst <= STEP_TOLERANCE => failures.push(format!(
                    "{name} on {device:?} now matches (worst {worst:e}): remove it from KNOWN_STEP_DIFFERENCES ({why})"
                )),
                Some(_) => {}
                None if worst > STEP_TOLERANCE => failures.push(format!(
                    "{name} on {device:?}: losses {got:?} vs the framework's float64 {want:?} (worst {worst:e})"
                )),
                None => {}
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Models whose training run is known to end more than 2 points from their framework's, with the
/// reason; the test fails when one of them comes within 2 points.
///
/// keras_gru_embedding ends 1.9 points above Keras 3 for a known reason, not listed because it is
/// within 2: Keras 3's Adam on TensorFlow squares an Embedding's gradient per token occurrence;
/// fed dense gradients, Keras' epoch losses and accuracy equal distk-gpu's to 4 decimals
/// (examples/gen/keras3_sparse_adam.py).
const KNOWN_ACCURACY_DIFFERENCES: &[(&str, &str)] = &[];

fn distk(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_distk-gpu")).args(args).output().expect("run distk-gpu")
}

fn accuracy_after_fit(side: &Value, out: &Path) -> f64 {
    let fit = &side["fit"];
    let (epochs, batch, lr) = (fit["epochs"].to_string(), fit["batch"].to_string(), fit["lr"].to_string());
    let model = model_path(side);
    let train = root().join(side["train"].as_str().unwrap());
    let mut args = vec![
        "run",
        model.to_str().unwrap(),
        "--data",
        train.to_str().unwrap(),
        "--epochs",
        &epochs,
        "--batch-size",
        &batch,
        "--optimizer",
        "adam",
        "--learning-rate",
        &lr,
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    if side["from_logits"].as_bool() == Some(true) {
        args.extend(["--from-logits", "true"]);
    }
    if adds_biases(side) {
        args.push("--add-missing-biases");
    }
    // PyTorch's BatchNorm momentum 0.1 is Keras' 0.9 (the sidecar gives it as --bn-momentum takes it).
    let momentum = side["bn_momentum"].as_f64().map(|m| m.to_string());
    if let Some(m) = &momentum {
        args.extend(["--bn-momentum", m]);
    }
    let o = distk(&args);
    assert!(o.status.success(), "run failed: {}", String::from_utf8_lossy(&o.stderr));
    let test = root().join(side["test"].as_str().unwrap());
    common::evaluate_json(out, &test, "cpu")["accuracy"].as_f64().unwrap()
}

#[test]
fn training_runs_end_within_two_points_of_the_frameworks_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    for (name, side) in fixtures() {
        let want = side["fit"]["test_accuracy"].as_f64().unwrap();
        let trained = dir.path().join(format!("{name}.onnx"));
        let got = accuracy_after_fit(&side, &trained);
        eprintln!("{name}: test accuracy {got:.4} (framework {want:.4})");
        tract_runs_the_trained_export_as_the_engine_does(&name, &side, &trained);
        let close = (got - want).abs() <= 0.02;
        match KNOWN_ACCURACY_DIFFERENCES.iter().find(|(n, _)| *n == name) {
            Some((_, why)) => {
                assert!(!close, "{name} now ends within 2 points: remove it from KNOWN_ACCURACY_DIFFERENCES ({why})")
            }
            None => assert!(close, "{name}: test accuracy {got:.4}, the framework's {want:.4}"),
        }
    }
}

/// Trained exports tract-onnx 0.23 cannot run, with the reason; the test fails when one of them runs.
const TRACT_CANNOT_RUN: &[(&str, &str)] =
    &[("keras_gru_embedding", "Keras 3 exports the GRU as a Loop, which tract-onnx 0.23 lacks")];

/// tract's forward of `path` on the sidecar's 8 test rows (int64 inputs for token models): first
/// with the input's concrete shape, then with the model's own declaration (a symbolic batch; a
/// concrete shape makes tract's analysis of PyTorch's dynamo exports fail against their symbolic
/// value_info, while Keras' exports need it).
fn tract_forward(path: &Path, side: &Value, int_input: bool) -> Result<Vec<f32>, String> {
    use tract_onnx::prelude::*;
    let rows = side["forward"]["rows"].as_u64().unwrap() as usize;
    let x = floats(&side["forward"]["x"]);
    let shape = [rows, x.len() / rows];
    let e = |e: TractError| format!("{e:?}");
    let input = || -> Result<Tensor, String> {
        if int_input {
            let ids: Vec<i64> = x.iter().map(|&v| v as i64).collect();
            Tensor::from_shape(&shape, &ids).map_err(e)
        } else {
            Tensor::from_shape(&shape, &x).map_err(e)
        }
    };
    let run = |concrete: bool| -> Result<Vec<f32>, String> {
        let mut model = tract_onnx::onnx().model_for_path(path).map_err(e)?;
        if concrete {
            let fact = if int_input { i64::fact(shape) } else { f32::fact(shape) };
            model = model.with_input_fact(0, fact.into()).map_err(e)?;
        }
        let plan = model.into_optimized().map_err(e)?.into_runnable().map_err(e)?;
        let out = plan.run(tvec!(input()?.into())).map_err(e)?;
        Ok(out[0].to_plain_array_view::<f32>().map_err(e)?.iter().copied().collect())
    };
    run(true).or_else(|first| run(false).map_err(|second| format!("{first}\n(symbolic batch: {second})")))
}

/// The trained model distk-gpu wrote: its forward on the engine and in tract agree (1e-5), or the
/// model is listed in [`TRACT_CANNOT_RUN`] and tract refuses it.
fn tract_runs_the_trained_export_as_the_engine_does(name: &str, side: &Value, trained: &Path) {
    let rows = side["forward"]["rows"].as_u64().unwrap() as usize;
    let x = floats(&side["forward"]["x"]);
    let m = OnnxModel::load(trained).unwrap_or_else(|e| panic!("{name}: the trained export: {e}"));
    let g = import(&m, rows).unwrap_or_else(|e| panic!("{name}: the trained export: {e}")).graph;
    let int_input = !g.dtype(g.inputs[0]).is_float();
    let ours = CpuExecutor::new(g).run(&[&x]).unwrap_or_else(|e| panic!("{name}: {e}")).remove(0);
    let listed = TRACT_CANNOT_RUN.iter().find(|(n, _)| *n == name);
    match (tract_forward(trained, side, int_input), listed) {
        (Ok(theirs), None) => {
            let err = rel_max_err(&ours, &theirs);
            eprintln!("{name}: trained export, engine vs tract {err:.1e}");
            assert!(err <= FORWARD_TOLERANCE, "{name}: the trained export differs in tract by {err:e}");
        }
        (Ok(_), Some((_, why))) => panic!("{name}: tract runs it now: remove it from TRACT_CANNOT_RUN ({why})"),
        (Err(e), None) => panic!("{name}: tract cannot run the trained export: {e}"),
        (Err(_), Some(_)) => {}
    }
}
