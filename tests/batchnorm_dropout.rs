//! Training semantics the export lost: BatchNormalization trains with (masked) batch statistics and
//! updates its running statistics with the unbiased variance; Dropout is active in training with a
//! seeded mask that is the same on both executors; `--dropout NODE=RATE` inserts one.

mod common;

use distk_engine::training_rewrite::TrainingOptions;
use distk_gpu::runtime::{DeviceChoice, Runtime};
use distk_gpu::training::{SessionConfig, TrainSession, parse_optimizer};
use distk_onnx::OnnxModel;
use prost::Message;
use tract_onnx::pb;

fn vi(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(if d < 0 { Value::DimParam("N".into()) } else { Value::DimValue(d) }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn t(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn n(op: &str, name: &str, ins: &[&str], out: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// x[N,64] -> MatMul -> BatchNormalization -> Relu -> Dropout(0.25) -> MatMul -> Add -> Softmax.
fn bn_mlp() -> OnnxModel {
    let w = |k: usize, seed: usize| {
        (0..k).map(|i| (((i + seed) * 2_654_435_761) % 2001) as f32 / 2000.0 * 0.4 - 0.2).collect::<Vec<f32>>()
    };
    let eps = pb::AttributeProto { name: "epsilon".into(), r#type: 1, f: 1e-3, ..Default::default() };
    let g = pb::GraphProto {
        name: "bn_mlp".into(),
        node: vec![
            n("MatMul", "dense", &["x", "w1"], "h", vec![]),
            n("BatchNormalization", "bn", &["h", "gamma", "beta", "mean", "var"], "hb", vec![eps]),
            n("Relu", "relu", &["hb"], "hr", vec![]),
            n("Dropout", "drop", &["hr", "ratio"], "hd", vec![]),
            n("MatMul", "logits", &["hd", "w2"], "z", vec![]),
            n("Add", "bias", &["z", "b2"], "zb", vec![]),
            n("Softmax", "softmax", &["zb"], "y", vec![]),
        ],
        initializer: vec![
            t("w1", &[64, 16], w(1024, 1)),
            t("gamma", &[16], vec![1.0; 16]),
            t("beta", &[16], vec![0.0; 16]),
            t("mean", &[16], vec![0.1; 16]),
            t("var", &[16], vec![2.0; 16]),
            t("ratio", &[], vec![0.25]),
            t("w2", &[16, 10], w(160, 2)),
            t("b2", &[10], vec![0.0; 10]),
        ],
        input: vec![vi("x", &[-1, 64])],
        output: vec![vi("y", &[-1, 10])],
        ..Default::default()
    };
    let m = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 15 }],
        graph: Some(g),
        ..Default::default()
    };
    OnnxModel::from_bytes(m.encode_to_vec(), "bn_mlp").unwrap()
}

fn digits(rows: usize) -> (Vec<f32>, Vec<f32>) {
    let mut r = distk_gpu::data::DataReader::open(
        &common::data("digits_train.parquet"),
        &distk_gpu::data::FeatureColumns::parse("features"),
        Some("label"),
        rows,
    )
    .unwrap();
    let b = r.next_rows().unwrap().unwrap();
    (b.features, b.labels.unwrap().iter().map(|&l| l as f32).collect())
}

#[test]
fn batchnorm_running_statistics_follow_the_masked_batch() {
    let model = bn_mlp();
    let (x, y) = digits(20);
    // 20 real rows in a batch of 32: the padding must not move the statistics.
    let w1: Vec<f32> = {
        let g = distk_onnx::import(&model, 1).unwrap().graph;
        let s = g.layout.find("w1").unwrap();
        g.initial_params[s.offset..s.offset + s.len].to_vec()
    };
    let mut h = vec![0.0f64; 20 * 16];
    for r in 0..20 {
        for c in 0..16 {
            h[r * 16 + c] = (0..64).map(|k| x[r * 64 + k] as f64 * w1[k * 16 + c] as f64).sum();
        }
    }
    let m = 0.9f64;
    let mut results = Vec::new();
    for device in [DeviceChoice::Cpu, DeviceChoice::Wgpu] {
        let mut rt = Runtime::open(device, None).unwrap();
        // Learning rate 0: the step changes only the running statistics.
        let opt = parse_optimizer("sgd", Some(0.0), "").unwrap();
        let opts = TrainingOptions { bn_momentum: m as f32, dropout_after: vec![] };
        let mut s = TrainSession::with_config(
            &model,
            &mut rt,
            32,
            &SessionConfig { fuse: true, training: opts.clone(), seed: 7, ..SessionConfig::new(opt) },
        )
        .unwrap();
        s.step(20, &x, &y).unwrap();
        let p = s.params().unwrap();
        let (ms, vs) = (s.layout().find("mean").unwrap().clone(), s.layout().find("var").unwrap().clone());
        assert!(!ms.trainable && !vs.trainable, "running statistics are state, not trainable");
        for c in 0..16 {
            let mean: f64 = (0..20).map(|r| h[r * 16 + c]).sum::<f64>() / 20.0;
            let var: f64 = (0..20).map(|r| (h[r * 16 + c] - mean).powi(2)).sum::<f64>() / 19.0;
            let want_m = m * 0.1 + (1.0 - m) * mean;
            let want_v = m * 2.0 + (1.0 - m) * var;
            let (got_m, got_v) = (p[ms.offset + c] as f64, p[vs.offset + c] as f64);
            assert!(
                (got_m - want_m).abs() <= 1e-5 * want_m.abs().max(1.0),
                "{device:?} running mean {c}: {got_m} vs {want_m}"
            );
            assert!(
                (got_v - want_v).abs() <= 1e-5 * want_v.abs().max(1.0),
                "{device:?} running var {c}: {got_v} vs {want_v}"
            );
        }
        results.push(p);
    }
    let e = common::rel_max_err(&results[1], &results[0]);
    assert!(e <= 1e-5, "executors disagree by {e}");
}

#[test]
fn dropout_masks_agree_across_executors_and_training_learns() {
    let model = bn_mlp();
    let (x, y) = digits(256);
    let mut losses = Vec::new();
    for device in [DeviceChoice::Cpu, DeviceChoice::Wgpu] {
        let mut rt = Runtime::open(device, None).unwrap();
        let opt = parse_optimizer("adam", Some(0.01), "").unwrap();
        let opts = TrainingOptions { bn_momentum: 0.99, dropout_after: vec![("dense".into(), 0.1)] };
        let mut s = TrainSession::with_config(
            &model,
            &mut rt,
            32,
            &SessionConfig { fuse: true, training: opts.clone(), seed: 11, ..SessionConfig::new(opt) },
        )
        .unwrap();
        let mut l = Vec::new();
        for epoch in 0..8 {
            for b in 0..8 {
                let st = s.step(32, &x[b * 32 * 64..(b + 1) * 32 * 64], &y[b * 32..(b + 1) * 32]).unwrap();
                if epoch == 0 || epoch == 7 {
                    l.push(st.loss);
                }
            }
        }
        losses.push(l);
    }
    // The same seeded masks on both executors give the same losses, step by step.
    for (a, b) in losses[0].iter().zip(&losses[1]) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "cpu {a} vs wgpu {b}");
    }
    let first: f32 = losses[0][..8].iter().sum::<f32>() / 8.0;
    let last: f32 = losses[0][8..].iter().sum::<f32>() / 8.0;
    assert!(last < first * 0.5, "training with BatchNorm and dropout lowers the loss: {first} -> {last}");
}

#[test]
fn dropout_after_an_unknown_node_is_a_clear_error() {
    let model = bn_mlp();
    let mut rt = Runtime::open(DeviceChoice::Cpu, None).unwrap();
    let opts = TrainingOptions { bn_momentum: 0.99, dropout_after: vec![("nope".into(), 0.5)] };
    let opt = parse_optimizer("adam", None, "").unwrap();
    let e = TrainSession::with_config(
        &model,
        &mut rt,
        8,
        &SessionConfig { training: opts.clone(), seed: 0, ..SessionConfig::new(opt) },
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no node `nope`"), "{e}");
}
