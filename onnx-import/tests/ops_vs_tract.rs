//! Each supported ONNX op (and its legacy attribute forms) imported and run on the CPU executor,
//! against tract running the same model bytes. Tolerance: max abs diff / max abs value <= 1e-5.

use distk_engine::Executor;
use distk_engine::cpu::CpuExecutor;
use distk_onnx::{ImportError, OnnxModel, import};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tract_onnx::pb;
use tract_onnx::prelude::*;

fn attr_i(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 2, i: v, ..Default::default() }
}
fn attr_f(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 1, f: v, ..Default::default() }
}
fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 7, ints: v.to_vec(), ..Default::default() }
}
fn attr_s(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: 3, s: v.as_bytes().to_vec(), ..Default::default() }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
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

fn f32_tensor(name: &str, dims: &[usize], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: 1,
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn i64_tensor(name: &str, data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
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
fn model(opset: i64, x_dims: &[usize], nodes: Vec<pb::NodeProto>, inits: Vec<pb::TensorProto>) -> Vec<u8> {
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

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "output sizes differ");
    let scale = want.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs())).max(1e-20);
    got.iter().zip(want).fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs())) / scale
}

/// Imports and runs `bytes` for batch `n`, runs tract on the same bytes, compares.
fn check(what: &str, bytes: Vec<u8>, n: usize, x_dims: &[usize]) {
    let mut rng = StdRng::seed_from_u64(what.len() as u64);
    let mut shape = vec![n];
    shape.extend_from_slice(x_dims);
    let x: Vec<f32> = (0..shape.iter().product()).map(|_| rng.random_range(-2.0..2.0)).collect();
    let m = OnnxModel::from_bytes(bytes.clone(), what).unwrap_or_else(|e| panic!("{what}: {e}"));
    let g = import(&m, n).unwrap_or_else(|e| panic!("{what}: {e}")).graph;
    let ours = CpuExecutor::new(g).run(&[&x]).unwrap().remove(0);
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .with_input_fact(0, f32::fact(&shape).into())
        .unwrap()
        .into_optimized()
        .unwrap_or_else(|e| panic!("{what}: tract: {e:?}"))
        .into_runnable()
        .unwrap();
    let out = plan.run(tvec!(Tensor::from_shape(&shape, &x).unwrap().into())).unwrap();
    let want: Vec<f32> = out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    let e = rel_err(&ours, &want);
    assert!(e <= 1e-5, "{what}: error {e:e} against tract");
}

fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

#[test]
fn gemm_with_every_attribute() {
    for (ta, tb, alpha, beta) in [(0, 0, 1.0, 1.0), (0, 1, 0.5, 2.0), (1, 0, 1.0, 0.0), (1, 1, -1.5, 0.3)] {
        let w_dims = if tb == 1 { [5, 4] } else { [4, 5] };
        let x_dims = vec![4];
        // With transA, A is x transposed by a Transpose node ([4, N]), so op(A) is [N, 4] again.
        let mut nodes = Vec::new();
        let a_in = if ta == 1 {
            nodes.push(node("Transpose", &["x"], "xt", vec![attr_ints("perm", &[1, 0])]));
            "xt"
        } else {
            "x"
        };
        nodes.push(node(
            "Gemm",
            &[a_in, "w", "c"],
            "y",
            vec![attr_i("transA", ta), attr_i("transB", tb), attr_f("alpha", alpha), attr_f("beta", beta)],
        ));
        let inits = vec![f32_tensor("w", &w_dims, &weights(20, 1)), f32_tensor("c", &[5], &weights(5, 2))];
        check(&format!("gemm {ta} {tb} {alpha} {beta}"), model(13, &x_dims, nodes, inits), 3, &x_dims);
    }
}

#[test]
fn elementwise_ops_and_activations() {
    for op in ["Relu", "Sigmoid", "Tanh", "Softplus", "Exp", "Neg", "Abs"] {
        check(op, model(13, &[7], vec![node(op, &["x"], "y", vec![])], vec![]), 3, &[7]);
    }
    check(
        "LeakyRelu",
        model(13, &[7], vec![node("LeakyRelu", &["x"], "y", vec![attr_f("alpha", 0.2)])], vec![]),
        3,
        &[7],
    );
    check("Elu", model(13, &[7], vec![node("Elu", &["x"], "y", vec![attr_f("alpha", 0.5)])], vec![]), 3, &[7]);
    check("Selu", model(13, &[7], vec![node("Selu", &["x"], "y", vec![])], vec![]), 3, &[7]);
    check(
        "HardSigmoid",
        model(13, &[7], vec![node("HardSigmoid", &["x"], "y", vec![attr_f("alpha", 0.3)])], vec![]),
        3,
        &[7],
    );
    check(
        "Clip opset 6",
        model(6, &[7], vec![node("Clip", &["x"], "y", vec![attr_f("min", -0.5), attr_f("max", 0.7)])], vec![]),
        3,
        &[7],
    );
    let lo = f32_tensor("lo", &[], &[-0.25]);
    check("Clip opset 13", model(13, &[7], vec![node("Clip", &["x", "lo", ""], "y", vec![])], vec![lo]), 3, &[7]);
    let sq =
        vec![node("Abs", &["x"], "a", vec![]), node("Sqrt", &["a"], "s", vec![]), node("Log", &["s"], "y", vec![])];
    check("Sqrt Log", model(13, &[7], sq, vec![]), 3, &[7]);
    for op in ["Add", "Sub", "Mul", "Div"] {
        let b = f32_tensor("b", &[4, 1], &[0.5, 1.5, -2.0, 3.0]);
        check(
            &format!("{op} broadcast"),
            model(13, &[4, 3], vec![node(op, &["x", "b"], "y", vec![])], vec![b]),
            2,
            &[4, 3],
        );
    }
    let e = f32_tensor("e", &[], &[2.0]);
    check("Pow", model(13, &[5], vec![node("Pow", &["x", "e"], "y", vec![])], vec![e]), 2, &[5]);
}

#[test]
fn legacy_broadcast_with_axis_below_opset_7() {
    // Opset 6: B of shape [3] added along axis 1 of A [N, 3, 4].
    let b = f32_tensor("b", &[3], &[1.0, -2.0, 3.0]);
    let nodes = vec![node("Add", &["x", "b"], "y", vec![attr_i("broadcast", 1), attr_i("axis", 1)])];
    let bytes = model(6, &[3, 4], nodes, vec![b]);
    let m = OnnxModel::from_bytes(bytes, "legacy").unwrap();
    let g = import(&m, 2).unwrap().graph;
    let x: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let y = CpuExecutor::new(g).run(&[&x]).unwrap().remove(0);
    for (i, (&a, &b)) in y.iter().zip(&x).enumerate() {
        let c = (i / 4) % 3;
        assert_eq!(a, b + [1.0, -2.0, 3.0][c]);
    }
}

#[test]
fn softmax_axis_semantics_before_and_from_opset_13() {
    for opset in [11, 13] {
        for axis in [1, -1, 2] {
            let nodes = vec![node("Softmax", &["x"], "y", vec![attr_i("axis", axis)])];
            check(&format!("softmax opset {opset} axis {axis}"), model(opset, &[3, 4], nodes, vec![]), 2, &[3, 4]);
            let nodes = vec![node("LogSoftmax", &["x"], "y", vec![attr_i("axis", axis)])];
            check(&format!("logsoftmax opset {opset} axis {axis}"), model(opset, &[3, 4], nodes, vec![]), 2, &[3, 4]);
        }
    }
}

#[test]
fn conv_pool_and_batchnorm_forms() {
    let w = f32_tensor("w", &[4, 2, 3, 3], &weights(72, 3));
    let b = f32_tensor("b", &[4], &weights(4, 4));
    let conv = |attrs| vec![node("Conv", &["x", "w", "b"], "y", attrs)];
    check("conv plain", model(13, &[2, 7, 7], conv(vec![]), vec![w.clone(), b.clone()]), 2, &[2, 7, 7]);
    check(
        "conv pads strides dilations",
        model(
            13,
            &[2, 9, 8],
            conv(vec![
                attr_ints("pads", &[1, 2, 0, 1]),
                attr_ints("strides", &[2, 1]),
                attr_ints("dilations", &[1, 2]),
            ]),
            vec![w.clone(), b.clone()],
        ),
        2,
        &[2, 9, 8],
    );
    for auto in ["SAME_UPPER", "SAME_LOWER", "VALID"] {
        check(
            &format!("conv auto_pad {auto}"),
            model(
                13,
                &[2, 8, 7],
                conv(vec![attr_s("auto_pad", auto), attr_ints("strides", &[2, 2])]),
                vec![w.clone(), b.clone()],
            ),
            2,
            &[2, 8, 7],
        );
    }
    let wg = f32_tensor("w", &[4, 1, 3, 3], &weights(36, 5));
    check("conv group", model(13, &[2, 6, 6], conv(vec![attr_i("group", 2)]), vec![wg, b.clone()]), 2, &[2, 6, 6]);
    let w1 = f32_tensor("w", &[3, 2, 3], &weights(18, 6));
    check(
        "conv 1d",
        model(13, &[2, 10], vec![node("Conv", &["x", "w"], "y", vec![attr_ints("pads", &[1, 1])])], vec![w1]),
        2,
        &[2, 10],
    );
    let w3 = f32_tensor("w", &[2, 2, 2, 2, 2], &weights(32, 7));
    check(
        "conv 3d",
        model(13, &[2, 4, 5, 4], vec![node("Conv", &["x", "w"], "y", vec![])], vec![w3]),
        1,
        &[2, 4, 5, 4],
    );
    for (op, extra) in
        [("MaxPool", vec![]), ("AveragePool", vec![attr_i("count_include_pad", 1)]), ("AveragePool", vec![])]
    {
        let mut attrs =
            vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])];
        attrs.extend(extra);
        check(&format!("{op} 2d"), model(13, &[2, 7, 8], vec![node(op, &["x"], "y", attrs)], vec![]), 2, &[2, 7, 8]);
    }
    check(
        "MaxPool ceil 1d",
        model(
            13,
            &[2, 9],
            vec![node(
                "MaxPool",
                &["x"],
                "y",
                vec![attr_ints("kernel_shape", &[2]), attr_ints("strides", &[2]), attr_i("ceil_mode", 1)],
            )],
            vec![],
        ),
        2,
        &[2, 9],
    );
    check(
        "GlobalAveragePool",
        model(13, &[3, 4, 5], vec![node("GlobalAveragePool", &["x"], "y", vec![])], vec![]),
        2,
        &[3, 4, 5],
    );
    let bn: Vec<pb::TensorProto> = ["s", "bb", "m", "v"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let d = weights(3, 10 + i as u64);
            f32_tensor(n, &[3], &if *n == "v" { d.iter().map(|x| x.abs() + 0.1).collect() } else { d })
        })
        .collect();
    check(
        "BatchNormalization",
        model(
            15,
            &[3, 4, 4],
            vec![node("BatchNormalization", &["x", "s", "bb", "m", "v"], "y", vec![attr_f("epsilon", 1e-3)])],
            bn.clone(),
        ),
        2,
        &[3, 4, 4],
    );
    check(
        "BatchNormalization opset 7 with spatial",
        model(
            7,
            &[3, 5],
            vec![node(
                "BatchNormalization",
                &["x", "s", "bb", "m", "v"],
                "y",
                vec![attr_i("spatial", 1), attr_i("is_test", 1)],
            )],
            bn,
        ),
        2,
        &[3, 5],
    );
}

#[test]
fn shape_ops_fold_and_reshape_forms() {
    // Flatten chain as tf2onnx writes it: Shape -> Gather -> Slice -> Concat -> Cast -> Reshape.
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("Gather", &["s", "i0"], "g", vec![attr_i("axis", 0)]),
        node("Unsqueeze", &["g", "ax0"], "gu", vec![]),
        node("Concat", &["gu", "m1"], "shape", vec![attr_i("axis", 0)]),
        node("Cast", &["shape"], "shape64", vec![attr_i("to", 7)]),
        node("Reshape", &["x", "shape64"], "r", vec![]),
        node("Transpose", &["r"], "y", vec![attr_ints("perm", &[1, 0])]),
    ];
    let inits = vec![
        pb::TensorProto { name: "i0".into(), dims: vec![], data_type: 7, int64_data: vec![0], ..Default::default() },
        i64_tensor("ax0", &[0]),
        i64_tensor("m1", &[-1]),
    ];
    check("flatten chain", model(13, &[3, 4], nodes, inits), 2, &[3, 4]);
    let nodes = vec![node("Reshape", &["x", "sh"], "y", vec![])];
    check("reshape 0 and -1", model(13, &[3, 4], nodes, vec![i64_tensor("sh", &[0, -1, 2])]), 2, &[3, 4]);
    check(
        "flatten axis 2",
        model(13, &[3, 4], vec![node("Flatten", &["x"], "y", vec![attr_i("axis", 2)])], vec![]),
        2,
        &[3, 4],
    );
    let nodes = vec![
        node("Unsqueeze", &["x"], "u", vec![attr_ints("axes", &[1, 3])]),
        node("Squeeze", &["u"], "y", vec![attr_ints("axes", &[3])]),
    ];
    check("squeeze/unsqueeze attribute form", model(11, &[3, 4], nodes, vec![]), 2, &[3, 4]);
    let nodes = vec![node("Unsqueeze", &["x", "a"], "u", vec![]), node("Squeeze", &["u", "b"], "y", vec![])];
    check(
        "squeeze/unsqueeze input form",
        model(13, &[3, 4], nodes, vec![i64_tensor("a", &[-1, 0]), i64_tensor("b", &[0])]),
        2,
        &[3, 4],
    );
    let nodes = vec![node("Concat", &["x", "c"], "y", vec![attr_i("axis", -1)])];
    check(
        "concat with a parameter",
        model(13, &[3, 4], nodes, vec![f32_tensor("c", &[2, 3, 2], &weights(12, 9))]),
        2,
        &[3, 4],
    );
    for (op, keep) in [("ReduceMean", 1), ("ReduceSum", 0)] {
        let nodes = vec![node(op, &["x"], "y", vec![attr_ints("axes", &[1, -1]), attr_i("keepdims", keep)])];
        check(&format!("{op} attribute axes"), model(11, &[3, 4, 5], nodes, vec![]), 2, &[3, 4, 5]);
    }
    let nodes = vec![node("ReduceSum", &["x", "ax"], "y", vec![])];
    check("ReduceSum input axes", model(13, &[3, 4], nodes, vec![i64_tensor("ax", &[1])]), 2, &[3, 4]);
    let nodes = vec![node("Dropout", &["x"], "d", vec![]), node("Identity", &["d"], "y", vec![])];
    check("Dropout and Identity", model(13, &[3], nodes, vec![]), 2, &[3]);
    let nodes = vec![node("MatMul", &["x", "v"], "y", vec![])];
    check("MatMul with a vector", model(13, &[4], nodes, vec![f32_tensor("v", &[4], &weights(4, 11))]), 3, &[4]);
}

#[test]
fn unsupported_ops_are_all_listed_in_one_error() {
    let nodes = vec![
        node("Relu", &["x"], "a", vec![]),
        node("Erf", &["a"], "b", vec![]),
        node("Erf", &["b"], "c", vec![]),
        node("LRN", &["c"], "d", vec![]),
        node("Relu", &["d"], "y", vec![]),
    ];
    let m = OnnxModel::from_bytes(model(13, &[4], nodes, vec![]), "unsupported").unwrap();
    match import(&m, 1) {
        Err(ImportError::Unsupported(list)) => {
            let summary: Vec<(String, usize)> = list.iter().map(|u| (u.op_type.clone(), u.count)).collect();
            assert_eq!(summary, vec![("Erf".to_string(), 2), ("LRN".to_string(), 1)]);
            let text = ImportError::Unsupported(list).to_string();
            assert!(text.contains("Erf x2 (nodes: Erf_b, Erf_c)") && text.contains("LRN x1"), "{text}");
        }
        other => panic!("expected one Unsupported error, got {other:?}"),
    }
}

#[test]
fn truncated_and_foreign_bytes_are_clear_errors() {
    let bytes = model(13, &[4], vec![node("Relu", &["x"], "y", vec![])], vec![]);
    let e = OnnxModel::from_bytes(bytes[..bytes.len() / 2].to_vec(), "half.onnx").unwrap_err();
    assert!(e.to_string().contains("half.onnx` is not a readable ONNX model"), "{e}");
    let e = OnnxModel::from_bytes(b"PAR1 definitely not onnx".to_vec(), "x.parquet").unwrap_err();
    assert!(matches!(e, ImportError::NotOnnx { .. }), "{e}");
}

#[test]
fn constant_value_float_and_int_forms() {
    // Function bodies (GroupNormalization, MeanVarianceNormalization expanded) use these forms.
    let floats = pb::AttributeProto {
        name: "value_floats".into(),
        r#type: 6,
        floats: vec![0.5, -1.0, 2.0, 3.0],
        ..Default::default()
    };
    let nodes = vec![
        node("Constant", &[], "k", vec![attr_f("value_float", 2.5)]),
        node("Constant", &[], "v", vec![floats]),
        node("Constant", &[], "s", vec![attr_ints("value_ints", &[-1, 12])]),
        node("Mul", &["x", "k"], "m", vec![]),
        node("Add", &["m", "v"], "a", vec![]),
        node("Reshape", &["a", "s"], "y", vec![]),
    ];
    check("Constant value_float(s)/value_ints", model(13, &[3, 4], nodes, vec![]), 2, &[3, 4]);
}

#[test]
fn matmul_with_partially_broadcast_batch_dims() {
    // Batch dims [N, 1] x [3]: each operand is broadcast on a different dim.
    let nodes = vec![node("MatMul", &["x", "w"], "y", vec![])];
    let w = f32_tensor("w", &[3, 5, 6], &weights(90, 12));
    check("MatMul [N, 1, 4, 5] x [3, 5, 6]", model(13, &[1, 4, 5], nodes, vec![w]), 2, &[1, 4, 5]);
}

#[test]
fn slice_of_run_time_tensors() {
    // Input form (opset 13): negative and clamped bounds, two axes.
    let nodes = vec![node("Slice", &["x", "s", "e", "a"], "y", vec![])];
    let inits = vec![i64_tensor("s", &[1, -4]), i64_tensor("e", &[5, 100]), i64_tensor("a", &[1, -1])];
    check("Slice input form", model(13, &[6, 5], nodes, inits), 2, &[6, 5]);
    // Attribute form (opset 9), axes implied.
    let attrs = vec![attr_ints("starts", &[0, 2]), attr_ints("ends", &[2, 6])];
    check("Slice attribute form", model(9, &[6], vec![node("Slice", &["x"], "y", attrs)], vec![]), 3, &[6]);
    // Steps other than 1 are refused with a clear error, not wrong values.
    let nodes = vec![node("Slice", &["x", "s", "e", "a", "st"], "y", vec![])];
    let inits = vec![i64_tensor("s", &[0]), i64_tensor("e", &[6]), i64_tensor("a", &[1]), i64_tensor("st", &[2])];
    let m = OnnxModel::from_bytes(model(13, &[6], nodes, inits), "step 2").unwrap();
    let e = import(&m, 1).unwrap_err().to_string();
    assert!(e.contains("step 2 on a run-time tensor is not supported"), "{e}");
}

#[test]
fn min_max_and_clip_of_run_time_tensors() {
    let nodes = vec![
        node("Neg", &["x"], "n", vec![]),
        node("Max", &["x", "n", "w"], "m", vec![]),
        node("Min", &["m", "v"], "y", vec![]),
    ];
    let inits = vec![f32_tensor("w", &[4], &[0.5, -1.0, 1.5, 0.0]), f32_tensor("v", &[3, 1], &[1.0, 0.25, 2.0])];
    check("variadic Max, Min", model(13, &[3, 4], nodes, inits), 2, &[3, 4]);
    check("Min of one input", model(13, &[5], vec![node("Min", &["x"], "y", vec![])], vec![]), 2, &[5]);
    // Bounds computed at run time: the mean of x and the mean plus 0.5 (and max < min: all max).
    for (lo, hi) in [("lo", "hi"), ("hi", "lo"), ("lo", ""), ("", "hi")] {
        let nodes = vec![
            node("ReduceMean", &["x"], "lo", vec![attr_i("keepdims", 0)]),
            node("Add", &["lo", "half"], "hi", vec![]),
            node("Clip", &["x", lo, hi], "y", vec![]),
        ];
        let half = f32_tensor("half", &[], &[0.5]);
        check(&format!("Clip run-time bounds {lo} {hi}"), model(13, &[6], nodes, vec![half]), 1, &[6]);
    }
}

#[test]
fn reciprocal_sum_and_mean() {
    let nodes = vec![
        node("Abs", &["x"], "a", vec![]),
        node("Add", &["a", "one"], "p", vec![]),
        node("Reciprocal", &["p"], "r", vec![]),
        node("Sum", &["x", "r", "w"], "s", vec![]),
        node("Mean", &["s", "x", "r"], "y", vec![]),
    ];
    let inits = vec![f32_tensor("one", &[], &[1.0]), f32_tensor("w", &[4], &[0.5, -1.0, 1.5, 0.0])];
    check("Reciprocal, Sum, Mean", model(13, &[3, 4], nodes, inits), 2, &[3, 4]);
}
