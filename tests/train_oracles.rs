//! Training steps against the oracles: plain SGD from PyTorch replays of the exported models
//! (cross-checked against Keras), and every Keras optimizer's own per-step losses and final
//! weights, on the CPU and the WGSL executors. Tolerance: 1e-4 relative per step loss, and 1e-4
//! (max abs diff over max abs value) per final weight tensor.

mod common;

use common::{model, read_npz, root};
use distk_gpu::data::{DataReader, FeatureColumns};
use distk_gpu::runtime::{DeviceChoice, Runtime};
use distk_gpu::training::{SessionConfig, TrainSession, parse_optimizer};
use distk_onnx::OnnxModel;
use serde_json::Value;

const TOLERANCE: f64 = 1e-4;

fn oracle(name: &str) -> Value {
    let path = root().join(format!("tests/fixtures/oracles/train/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Replays an oracle on a device; returns the worst loss and weight errors.
fn replay(name: &str, device: DeviceChoice, optimizer_name: &str, optimizer_args: &str) -> (f64, f64) {
    let o = oracle(name);
    let batch = o["batch_size"].as_u64().unwrap() as usize;
    let steps = o["steps"].as_u64().unwrap() as usize;
    let lr = o["lr"].as_f64().unwrap() as f32;
    let fuse = !o["loss"].as_str().unwrap().contains("mode=probs");
    let file = o["model"].as_str().unwrap();
    let bundled = model(file);
    let path = if bundled.exists() { bundled } else { root().join("tests/fixtures/models").join(file) };
    let m = OnnxModel::load(&path).unwrap();
    let mut runtime = Runtime::open(device, None).unwrap();
    let opt = parse_optimizer(optimizer_name, Some(lr), optimizer_args).unwrap();
    let mut s =
        TrainSession::with_config(&m, &mut runtime, batch, &SessionConfig { fuse, ..SessionConfig::new(opt) }).unwrap();
    let data = common::data(o["data"].as_str().unwrap());
    let mut reader = DataReader::open(&data, &FeatureColumns::parse("features"), Some("label"), batch).unwrap();
    let mut worst_loss = 0.0f64;
    for step in 0..steps {
        let rows = reader.next_rows().unwrap().unwrap();
        let labels: Vec<f32> = rows.labels.unwrap().iter().map(|&l| l as f32).collect();
        let stats = s.step(rows.count, &rows.features, &labels).unwrap();
        let want = o["per_step"][step]["loss"].as_f64().unwrap();
        let e = (stats.loss as f64 - want).abs() / want.abs();
        worst_loss = worst_loss.max(e);
        assert!(e <= TOLERANCE, "{name} on {device:?}: step {step} loss {} vs {want} ({e:e})", stats.loss);
    }
    let params = s.params().unwrap();
    let npz = read_npz(&root().join(format!("tests/fixtures/oracles/train/{name}.npz")));
    let mut worst_w = 0.0f64;
    for slot in &s.layout().slots {
        let key = if slot.trainable { format!("param/{}", slot.name) } else { format!("state/{}", slot.name) };
        let want = npz[&key].f32s();
        // Relative to the tensor's largest value, floored at 1e-3: a bias in front of a BatchNorm has a
        // zero gradient in exact arithmetic and ends at round-off level (1e-8) on both sides.
        let got = &params[slot.offset..slot.offset + slot.len];
        let scale = want.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs())).max(1e-3);
        let e = got.iter().zip(&want).fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs())) / scale;
        worst_w = worst_w.max(e);
        if std::env::var("DISTK_DEBUG").is_ok() {
            eprintln!("{name} {device:?} {} {e:e}", slot.name);
            continue;
        }
        assert!(e <= TOLERANCE, "{name} on {device:?}: final `{}` off by {e:e}", slot.name);
    }
    (worst_loss, worst_w)
}

#[test]
fn plain_sgd_steps_match_the_pytorch_and_keras_oracles() {
    let mut report = Vec::new();
    for name in [
        "keras_mlp__digits",
        "keras_mlp__digits__probs",
        "torch_mlp__digits",
        "keras_mlp_mnist__mnist",
        "keras_cnn__mnist",
    ] {
        for device in [DeviceChoice::Cpu, DeviceChoice::Wgpu] {
            let (l, w) = replay(name, device, "sgd", "");
            report.push(format!("{name:28} {device:?}: loss {l:.1e}, weights {w:.1e}"));
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn batchnorm_models_match_the_pytorch_replay() {
    // bn_mlp and bn_cnn (tests/fixtures/models, made by examples/gen/make_bn_models.py): BatchNorm in
    // training mode with momentum 0.99 and the unbiased running variance; the running statistics are
    // compared too (`state/` in the oracle).
    let mut report = Vec::new();
    for name in ["bn_mlp__digits", "bn_cnn__digits"] {
        for device in [DeviceChoice::Cpu, DeviceChoice::Wgpu] {
            let (l, w) = replay(name, device, "sgd", "");
            report.push(format!("{name:28} {device:?}: loss {l:.1e}, weights and running statistics {w:.1e}"));
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn every_keras_optimizer_matches_its_oracle() {
    let mut report = Vec::new();
    for (oracle_name, opt, args) in [
        ("opt_sgd", "sgd", ""),
        ("opt_sgd_momentum", "sgd", "momentum=0.9"),
        ("opt_sgd_nesterov", "sgd", "momentum=0.9,nesterov=true"),
        ("opt_adam", "adam", ""),
        ("opt_adam_lr1e-2", "adam", ""),
        ("opt_adamw", "adamw", ""),
        ("opt_adamw_strong", "adamw", "weight_decay=0.5"),
        ("opt_rmsprop", "rmsprop", ""),
        ("opt_adagrad", "adagrad", ""),
        ("opt_adadelta", "adadelta", ""),
    ] {
        let name = format!("keras_mlp__digits__{oracle_name}");
        for device in [DeviceChoice::Cpu, DeviceChoice::Wgpu] {
            let (l, w) = replay(&name, device, opt, args);
            report.push(format!("{name:36} {device:?}: loss {l:.1e}, weights {w:.1e}"));
        }
    }
    println!("{}", report.join("\n"));
}
