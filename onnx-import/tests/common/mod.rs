//! Helpers shared by the importer's integration tests: synthetic ONNX graphs built from protobuf
//! types, and the check of an import (run on the CPU executor) against tract on the same bytes.

#![allow(dead_code)]

use distk_engine::Executor;
use distk_engine::cpu::CpuExecutor;
use distk_onnx::{OnnxModel, import};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// An integer attribute.
pub fn attr_i(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 2, i: v, ..Default::default() }
}

/// A float attribute.
pub fn attr_f(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 1, f: v, ..Default::default() }
}

/// An integer-list attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 7, ints: v.to_vec(), ..Default::default() }
}

/// A string attribute.
pub fn attr_s(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 3, s: v.as_bytes().to_vec(), ..Default::default() }
}

/// A tensor attribute.
pub fn attr_t(name: &str, t: pb::TensorProto) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 4, t: Some(t), ..Default::default() }
}

/// A graph attribute (a Loop or Scan body, an If branch).
pub fn attr_g(name: &str, g: pb::GraphProto) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 5, g: Some(g), ..Default::default() }
}

/// A subgraph: its inputs and outputs as float32 value infos of the given dims (`None`: the batch
/// dim), and its nodes.
pub fn subgraph(
    inputs: &[(&str, &[Option<usize>])],
    outputs: &[(&str, &[Option<usize>])],
    nodes: Vec<pb::NodeProto>,
) -> pb::GraphProto {
    pb::GraphProto {
        name: "body".into(),
        node: nodes,
        input: inputs.iter().map(|(n, d)| value_info(n, d)).collect(),
        output: outputs.iter().map(|(n, d)| value_info(n, d)).collect(),
        ..Default::default()
    }
}

/// A float32 tensor value info with the given dims (`None`: the symbolic batch dim `N`).
pub fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => Value::DimValue(*n as i64),
                None => Value::DimParam("N".into()),
            }),
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

/// A float32 tensor.
pub fn f32_tensor(name: &str, dims: &[usize], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: 1,
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// A 1-d int64 tensor.
pub fn i64_tensor(name: &str, data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// An int64 tensor of the given dims.
pub fn i64_tensor_dims(name: &str, dims: &[usize], data: &[i64]) -> pb::TensorProto {
    pb::TensorProto { dims: dims.iter().map(|&d| d as i64).collect(), ..i64_tensor(name, data) }
}

/// An int64 scalar.
pub fn i64_scalar(name: &str, v: i64) -> pb::TensorProto {
    pb::TensorProto { name: name.into(), dims: vec![], data_type: 7, int64_data: vec![v], ..Default::default() }
}

/// A node named `<op>_<output>`.
pub fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        name: format!("{op}_{output}"),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute: attrs,
        ..Default::default()
    }
}

/// A model with input `x` ([N] + `x_dims`), output `y`, the given nodes and initializers.
pub fn model(opset: i64, x_dims: &[usize], nodes: Vec<pb::NodeProto>, inits: Vec<pb::TensorProto>) -> Vec<u8> {
    let mut dims = vec![None];
    dims.extend(x_dims.iter().map(|&d| Some(d)));
    let m = pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: opset }],
        producer_name: "distk-test".into(),
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: inits,
            input: vec![value_info("x", &dims)],
            output: vec![pb::ValueInfoProto { name: "y".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    };
    m.encode_to_vec()
}

/// The op types of a model's nodes.
pub fn op_types(bytes: &[u8]) -> Vec<String> {
    let m = pb::ModelProto::decode(bytes).expect("a test model decodes");
    m.graph.map(|g| g.node.into_iter().map(|n| n.op_type).collect()).unwrap_or_default()
}

/// Max abs difference over max abs value.
pub fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "output sizes differ");
    let scale = want.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs())).max(1e-20);
    got.iter().zip(want).fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs())) / scale
}

/// The tolerance of every comparison with tract.
pub const TOLERANCE: f64 = 1e-5;

/// Imports and runs `bytes` for batch `n` on the CPU executor and runs tract on the same bytes;
/// returns the relative error (or why either side failed).
pub fn compare(what: &str, bytes: &[u8], n: usize, x_dims: &[usize]) -> Result<f64, String> {
    compare_with(what, bytes, bytes, n, x_dims)
}

/// [`compare`] of `ours` imported and run on the CPU executor against tract running `theirs`, an
/// equivalent model (where tract's own form of an op departs from ONNX's definition).
pub fn compare_with(what: &str, ours: &[u8], theirs: &[u8], n: usize, x_dims: &[usize]) -> Result<f64, String> {
    let bytes = theirs;
    let mut rng = StdRng::seed_from_u64(what.len() as u64);
    let mut shape = vec![n];
    shape.extend_from_slice(x_dims);
    let x: Vec<f32> = (0..shape.iter().product()).map(|_| rng.random_range(-2.0..2.0)).collect();
    let m = OnnxModel::from_bytes(ours.to_vec(), what).map_err(|e| format!("load: {e}"))?;
    let g = import(&m, n).map_err(|e| format!("import: {e}"))?.graph;
    let ours = CpuExecutor::new(g).run(&[&x]).map_err(|e| format!("run: {e}"))?.remove(0);
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .map_err(|e| format!("tract: {e:?}"))?
        .with_input_fact(0, f32::fact(&shape).into())
        .map_err(|e| format!("tract: {e:?}"))?
        .into_optimized()
        .map_err(|e| format!("tract: {e:?}"))?
        .into_runnable()
        .map_err(|e| format!("tract: {e:?}"))?;
    let out = plan
        .run(tvec!(Tensor::from_shape(&shape, &x).map_err(|e| format!("tract: {e:?}"))?.into()))
        .map_err(|e| format!("tract: {e:?}"))?;
    let want: Vec<f32> =
        out[0].to_plain_array_view::<f32>().map_err(|e| format!("tract: {e:?}"))?.iter().copied().collect();
    if ours.len() != want.len() {
        return Err(format!("{} values against tract's {}", ours.len(), want.len()));
    }
    Ok(rel_err(&ours, &want))
}

/// [`compare`], asserting the error is within [`TOLERANCE`].
pub fn check(what: &str, bytes: &[u8], n: usize, x_dims: &[usize]) {
    match compare(what, bytes, n, x_dims) {
        Ok(e) => assert!(e <= TOLERANCE, "{what}: error {e:e} against tract"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// `n` values in [-1, 1) from `seed`.
pub fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}
