//! Every registered ONNX op (and its legacy attribute forms) imported and run on the CPU executor,
//! against tract running the same model bytes. Tolerance: max abs diff / max abs value <= 1e-5.
//! `every_registered_op_has_a_case` walks the registry: an op without a case here fails it.

mod common;

use std::collections::HashSet;

use common::*;
use distk_engine::Executor;
use distk_engine::cpu::CpuExecutor;
use distk_onnx::{ImportError, OnnxModel, import};
use tract_onnx::pb;

/// One synthetic model, checked against tract for `batch` rows of `[batch] + x_dims`.
struct Case {
    name: String,
    bytes: Vec<u8>,
    batch: usize,
    x_dims: Vec<usize>,
}

fn case(name: impl Into<String>, bytes: Vec<u8>, batch: usize, x_dims: &[usize]) -> Case {
    Case { name: name.into(), bytes, batch, x_dims: x_dims.to_vec() }
}

fn run(cases: Vec<Case>) {
    for c in &cases {
        check(&c.name, &c.bytes, c.batch, &c.x_dims);
    }
}

fn gemm_cases() -> Vec<Case> {
    let mut cases = Vec::new();
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
        cases.push(case(format!("gemm {ta} {tb} {alpha} {beta}"), model(13, &x_dims, nodes, inits), 3, &x_dims));
    }
    let nodes = vec![node("MatMul", &["x", "v"], "y", vec![])];
    cases.push(case(
        "MatMul with a vector",
        model(13, &[4], nodes, vec![f32_tensor("v", &[4], &weights(4, 11))]),
        3,
        &[4],
    ));
    let nodes = vec![node("MatMul", &["x", "w"], "y", vec![])];
    let w = f32_tensor("w", &[4, 2], &weights(8, 12));
    cases.push(case("MatMul batched", model(13, &[3, 4], nodes, vec![w]), 2, &[3, 4]));
    // Batch dims [N, 1] x [3]: each operand is broadcast on a different dim.
    let nodes = vec![node("MatMul", &["x", "w"], "y", vec![])];
    let w = f32_tensor("w", &[3, 5, 6], &weights(90, 12));
    cases.push(case("MatMul [N, 1, 4, 5] x [3, 5, 6]", model(13, &[1, 4, 5], nodes, vec![w]), 2, &[1, 4, 5]));
    cases
}

fn elementwise_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for op in ["Relu", "Sigmoid", "Tanh", "Softplus", "Exp", "Neg", "Abs"] {
        cases.push(case(op, model(13, &[7], vec![node(op, &["x"], "y", vec![])], vec![]), 3, &[7]));
    }
    let one = |op: &str, attrs: Vec<pb::AttributeProto>| model(13, &[7], vec![node(op, &["x"], "y", attrs)], vec![]);
    cases.push(case("LeakyRelu", one("LeakyRelu", vec![attr_f("alpha", 0.2)]), 3, &[7]));
    cases.push(case("Elu", one("Elu", vec![attr_f("alpha", 0.5)]), 3, &[7]));
    cases.push(case("Selu", one("Selu", vec![]), 3, &[7]));
    cases.push(case("HardSigmoid", one("HardSigmoid", vec![attr_f("alpha", 0.3)]), 3, &[7]));
    let hs = model(14, &[7], vec![node("HardSwish", &["x"], "y", vec![])], vec![]);
    cases.push(case("HardSwish", hs, 4, &[7]));
    let clip6 = vec![node("Clip", &["x"], "y", vec![attr_f("min", -0.5), attr_f("max", 0.7)])];
    cases.push(case("Clip opset 6", model(6, &[7], clip6, vec![]), 3, &[7]));
    let lo = f32_tensor("lo", &[], &[-0.25]);
    let clip13 = vec![node("Clip", &["x", "lo", ""], "y", vec![])];
    cases.push(case("Clip opset 13", model(13, &[7], clip13, vec![lo]), 3, &[7]));
    let sq =
        vec![node("Abs", &["x"], "a", vec![]), node("Sqrt", &["a"], "s", vec![]), node("Log", &["s"], "y", vec![])];
    cases.push(case("Sqrt Log", model(13, &[7], sq, vec![]), 3, &[7]));
    for op in ["Add", "Sub", "Mul", "Div"] {
        let b = f32_tensor("b", &[4, 1], &[0.5, 1.5, -2.0, 3.0]);
        let nodes = vec![node(op, &["x", "b"], "y", vec![])];
        cases.push(case(format!("{op} broadcast"), model(13, &[4, 3], nodes, vec![b]), 2, &[4, 3]));
    }
    let e = f32_tensor("e", &[], &[2.0]);
    cases.push(case("Pow", model(13, &[5], vec![node("Pow", &["x", "e"], "y", vec![])], vec![e]), 2, &[5]));
    // Variadic Min and Max of run-time tensors (and of one input).
    let nodes = vec![
        node("Neg", &["x"], "n", vec![]),
        node("Max", &["x", "n", "w"], "m", vec![]),
        node("Min", &["m", "v"], "y", vec![]),
    ];
    let inits = vec![f32_tensor("w", &[4], &[0.5, -1.0, 1.5, 0.0]), f32_tensor("v", &[3, 1], &[1.0, 0.25, 2.0])];
    cases.push(case("variadic Max, Min", model(13, &[3, 4], nodes, inits), 2, &[3, 4]));
    cases.push(case("Min of one input", model(13, &[5], vec![node("Min", &["x"], "y", vec![])], vec![]), 2, &[5]));
    // Clip bounds computed at run time: the mean of x and the mean plus 0.5 (and max < min: all max).
    for (lo, hi) in [("lo", "hi"), ("hi", "lo"), ("lo", ""), ("", "hi")] {
        let nodes = vec![
            node("ReduceMean", &["x"], "lo", vec![attr_i("keepdims", 0)]),
            node("Add", &["lo", "half"], "hi", vec![]),
            node("Clip", &["x", lo, hi], "y", vec![]),
        ];
        let half = f32_tensor("half", &[], &[0.5]);
        cases.push(case(format!("Clip run-time bounds {lo} {hi}"), model(13, &[6], nodes, vec![half]), 1, &[6]));
    }
    let nodes = vec![
        node("Abs", &["x"], "a", vec![]),
        node("Add", &["a", "one"], "p", vec![]),
        node("Reciprocal", &["p"], "r", vec![]),
        node("Sum", &["x", "r", "w"], "s", vec![]),
        node("Mean", &["s", "x", "r"], "y", vec![]),
    ];
    let inits = vec![f32_tensor("one", &[], &[1.0]), f32_tensor("w", &[4], &[0.5, -1.0, 1.5, 0.0])];
    cases.push(case("Reciprocal, Sum, Mean", model(13, &[3, 4], nodes, inits), 2, &[3, 4]));
    cases
}

fn softmax_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for opset in [11, 13] {
        for axis in [1, -1, 2] {
            for op in ["Softmax", "LogSoftmax"] {
                let nodes = vec![node(op, &["x"], "y", vec![attr_i("axis", axis)])];
                cases.push(case(
                    format!("{op} opset {opset} axis {axis}"),
                    model(opset, &[3, 4], nodes, vec![]),
                    2,
                    &[3, 4],
                ));
            }
        }
    }
    cases
}

fn conv_pool_batchnorm_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let w = f32_tensor("w", &[4, 2, 3, 3], &weights(72, 3));
    let b = f32_tensor("b", &[4], &weights(4, 4));
    let conv = |attrs| vec![node("Conv", &["x", "w", "b"], "y", attrs)];
    cases.push(case("conv plain", model(13, &[2, 7, 7], conv(vec![]), vec![w.clone(), b.clone()]), 2, &[2, 7, 7]));
    let attrs = vec![attr_ints("pads", &[1, 2, 0, 1]), attr_ints("strides", &[2, 1]), attr_ints("dilations", &[1, 2])];
    let m = model(13, &[2, 9, 8], conv(attrs), vec![w.clone(), b.clone()]);
    cases.push(case("conv pads strides dilations", m, 2, &[2, 9, 8]));
    for auto in ["SAME_UPPER", "SAME_LOWER", "VALID"] {
        let attrs = vec![attr_s("auto_pad", auto), attr_ints("strides", &[2, 2])];
        let m = model(13, &[2, 8, 7], conv(attrs), vec![w.clone(), b.clone()]);
        cases.push(case(format!("conv auto_pad {auto}"), m, 2, &[2, 8, 7]));
    }
    let wg = f32_tensor("w", &[4, 1, 3, 3], &weights(36, 5));
    cases.push(case(
        "conv group",
        model(13, &[2, 6, 6], conv(vec![attr_i("group", 2)]), vec![wg, b.clone()]),
        2,
        &[2, 6, 6],
    ));
    let w1 = f32_tensor("w", &[3, 2, 3], &weights(18, 6));
    let nodes = vec![node("Conv", &["x", "w"], "y", vec![attr_ints("pads", &[1, 1])])];
    cases.push(case("conv 1d", model(13, &[2, 10], nodes, vec![w1]), 2, &[2, 10]));
    let w3 = f32_tensor("w", &[2, 2, 2, 2, 2], &weights(32, 7));
    let nodes = vec![node("Conv", &["x", "w"], "y", vec![])];
    cases.push(case("conv 3d", model(13, &[2, 4, 5, 4], nodes, vec![w3]), 1, &[2, 4, 5, 4]));
    for (op, extra) in
        [("MaxPool", vec![]), ("AveragePool", vec![attr_i("count_include_pad", 1)]), ("AveragePool", vec![])]
    {
        let mut attrs =
            vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])];
        attrs.extend(extra);
        let m = model(13, &[2, 7, 8], vec![node(op, &["x"], "y", attrs)], vec![]);
        cases.push(case(format!("{op} 2d"), m, 2, &[2, 7, 8]));
    }
    let attrs = vec![attr_ints("kernel_shape", &[2]), attr_ints("strides", &[2]), attr_i("ceil_mode", 1)];
    cases.push(case(
        "MaxPool ceil 1d",
        model(13, &[2, 9], vec![node("MaxPool", &["x"], "y", attrs)], vec![]),
        2,
        &[2, 9],
    ));
    let m = model(13, &[3, 4, 5], vec![node("GlobalAveragePool", &["x"], "y", vec![])], vec![]);
    cases.push(case("GlobalAveragePool", m, 2, &[3, 4, 5]));
    let bn: Vec<pb::TensorProto> = ["s", "bb", "m", "v"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let d = weights(3, 10 + i as u64);
            f32_tensor(n, &[3], &if *n == "v" { d.iter().map(|x| x.abs() + 0.1).collect() } else { d })
        })
        .collect();
    let nodes = vec![node("BatchNormalization", &["x", "s", "bb", "m", "v"], "y", vec![attr_f("epsilon", 1e-3)])];
    cases.push(case("BatchNormalization", model(15, &[3, 4, 4], nodes, bn.clone()), 2, &[3, 4, 4]));
    let attrs = vec![attr_i("spatial", 1), attr_i("is_test", 1)];
    let nodes = vec![node("BatchNormalization", &["x", "s", "bb", "m", "v"], "y", attrs)];
    cases.push(case("BatchNormalization opset 7 with spatial", model(7, &[3, 5], nodes, bn), 2, &[3, 5]));
    cases
}

fn shape_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // Flatten chain as tf2onnx writes it: Shape -> Gather -> Unsqueeze -> Concat -> Cast -> Reshape.
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("Gather", &["s", "i0"], "g", vec![attr_i("axis", 0)]),
        node("Unsqueeze", &["g", "ax0"], "gu", vec![]),
        node("Concat", &["gu", "m1"], "shape", vec![attr_i("axis", 0)]),
        node("Cast", &["shape"], "shape64", vec![attr_i("to", 7)]),
        node("Reshape", &["x", "shape64"], "r", vec![]),
        node("Transpose", &["r"], "y", vec![attr_ints("perm", &[1, 0])]),
    ];
    let inits = vec![i64_scalar("i0", 0), i64_tensor("ax0", &[0]), i64_tensor("m1", &[-1])];
    cases.push(case("flatten chain", model(13, &[3, 4], nodes, inits), 2, &[3, 4]));
    let nodes = vec![node("Reshape", &["x", "sh"], "y", vec![])];
    cases.push(case("reshape 0 and -1", model(13, &[3, 4], nodes, vec![i64_tensor("sh", &[0, -1, 2])]), 2, &[3, 4]));
    for axis in [2, -1, -3, 3, 0] {
        let nodes = vec![node("Flatten", &["x"], "y", vec![attr_i("axis", axis)])];
        cases.push(case(format!("flatten axis {axis}"), model(13, &[3, 4], nodes, vec![]), 2, &[3, 4]));
    }
    let nodes = vec![
        node("Unsqueeze", &["x"], "u", vec![attr_ints("axes", &[1, 3])]),
        node("Squeeze", &["u"], "y", vec![attr_ints("axes", &[3])]),
    ];
    cases.push(case("squeeze/unsqueeze attribute form", model(11, &[3, 4], nodes, vec![]), 2, &[3, 4]));
    let nodes = vec![node("Unsqueeze", &["x", "a"], "u", vec![]), node("Squeeze", &["u", "b"], "y", vec![])];
    let inits = vec![i64_tensor("a", &[-1, 0]), i64_tensor("b", &[0])];
    cases.push(case("squeeze/unsqueeze input form", model(13, &[3, 4], nodes, inits), 2, &[3, 4]));
    let nodes = vec![node("Concat", &["x", "c"], "y", vec![attr_i("axis", -1)])];
    let c = f32_tensor("c", &[2, 3, 2], &weights(12, 9));
    cases.push(case("concat with a parameter", model(13, &[3, 4], nodes, vec![c]), 2, &[3, 4]));
    for (op, keep) in [("ReduceMean", 1), ("ReduceSum", 0)] {
        let nodes = vec![node(op, &["x"], "y", vec![attr_ints("axes", &[1, -1]), attr_i("keepdims", keep)])];
        cases.push(case(format!("{op} attribute axes"), model(11, &[3, 4, 5], nodes, vec![]), 2, &[3, 4, 5]));
    }
    let nodes = vec![node("ReduceSum", &["x", "ax"], "y", vec![])];
    cases.push(case("ReduceSum input axes", model(13, &[3, 4], nodes, vec![i64_tensor("ax", &[1])]), 2, &[3, 4]));
    let nodes = vec![node("ReduceMean", &["x", "ax"], "y", vec![attr_i("keepdims", 0)])];
    cases.push(case("ReduceMean input axes", model(18, &[3, 4], nodes, vec![i64_tensor("ax", &[-1])]), 2, &[3, 4]));
    let nodes = vec![node("Dropout", &["x"], "d", vec![]), node("Identity", &["d"], "y", vec![])];
    cases.push(case("Dropout and Identity", model(13, &[3], nodes, vec![]), 2, &[3]));
    // A ratio computed at run time (the inference form does not read it).
    let nodes = vec![
        node("ReduceMean", &["x"], "m", vec![attr_i("keepdims", 0)]),
        node("Sigmoid", &["m"], "r", vec![]),
        node("Dropout", &["x", "r"], "y", vec![]),
    ];
    cases.push(case("Dropout with a run-time ratio", model(13, &[3], nodes, vec![]), 1, &[3]));
    // Slice of run-time tensors, input form (opset 13): negative and clamped bounds, two axes.
    let nodes = vec![node("Slice", &["x", "s", "e", "a"], "y", vec![])];
    let inits = vec![i64_tensor("s", &[1, -4]), i64_tensor("e", &[5, 100]), i64_tensor("a", &[1, -1])];
    cases.push(case("Slice of run-time data, input form", model(13, &[6, 5], nodes, inits), 2, &[6, 5]));
    // Attribute form (opset 9), axes implied.
    let attrs = vec![attr_ints("starts", &[0, 2]), attr_ints("ends", &[2, 6])];
    let nodes = vec![node("Slice", &["x"], "y", attrs)];
    cases.push(case("Slice of run-time data, attribute form", model(9, &[6], nodes, vec![]), 3, &[6]));
    cases
}

/// The shape chain of a Keras 3 transformer export (flattening [N, T, D] to [N*T, D] ahead of a
/// dense layer): Shape -> Gather([0, 1]) -> ReduceProd(keepdims=1) -> Concat -> Reshape.
fn keras3_transformer_chain(opset: i64) -> Vec<u8> {
    let prod_attrs =
        if opset < 18 { vec![attr_ints("axes", &[0]), attr_i("keepdims", 1)] } else { vec![attr_i("keepdims", 1)] };
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("Gather", &["s", "i01"], "nt", vec![attr_i("axis", 0)]),
        node("ReduceProd", &["nt"], "rows", prod_attrs),
        node("Gather", &["s", "i2"], "d", vec![attr_i("axis", 0)]),
        node("Concat", &["rows", "d"], "target", vec![attr_i("axis", 0)]),
        node("Reshape", &["x", "target"], "flat", vec![]),
        node("MatMul", &["flat", "w"], "y", vec![]),
    ];
    let inits = vec![i64_tensor("i01", &[0, 1]), i64_tensor("i2", &[2]), f32_tensor("w", &[4, 5], &weights(20, 21))];
    model(opset, &[3, 4], nodes, inits)
}

fn constant_form_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for opset in [13, 18] {
        cases.push(case(
            format!("Keras 3 transformer shape chain, opset {opset}"),
            keras3_transformer_chain(opset),
            2,
            &[3, 4],
        ));
    }
    // Flatten of a constant: the fold and the run-time form share one axis rule (-1 is the last dim).
    for (axis, dims) in [(-1, [2, 3]), (-2, [1, 6]), (1, [1, 6])] {
        let c = f32_tensor("", &[1, 2, 3], &weights(6, 22));
        let nodes = vec![
            node("Constant", &[], "c", vec![attr_t("value", c)]),
            node("Flatten", &["c"], "f", vec![attr_i("axis", axis)]),
            node("Add", &["x", "f"], "y", vec![]),
        ];
        cases.push(case(format!("Flatten of a constant, axis {axis}"), model(13, &dims, nodes, vec![]), 2, &dims));
    }
    // ConstantOfShape, Size and Cast: (x + 1.5) / numel(x).
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("ConstantOfShape", &["s"], "c", vec![attr_t("value", f32_tensor("", &[1], &[1.5]))]),
        node("Size", &["x"], "n", vec![]),
        node("Cast", &["n"], "nf", vec![attr_i("to", 1)]),
        node("Add", &["x", "c"], "a", vec![]),
        node("Div", &["a", "nf"], "y", vec![]),
    ];
    cases.push(case("ConstantOfShape Size Cast", model(13, &[3], nodes, vec![]), 2, &[3]));
    // Range, Equal, Min and Max: a mask from positions, and a reshape target [min(N, 1000), max(-1, -5, -3)].
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("Gather", &["s", "one"], "d", vec![attr_i("axis", 0)]),
        node("Range", &["zero", "d", "one"], "r", vec![]),
        node("Equal", &["r", "pick"], "e", vec![]),
        node("Cast", &["e"], "ef", vec![attr_i("to", 1)]),
        node("Mul", &["x", "ef"], "m", vec![]),
        node("Gather", &["s", "i0"], "n", vec![attr_i("axis", 0)]),
        node("Min", &["n", "cap"], "rows", vec![]),
        node("Max", &["m1", "m5", "m3"], "cols", vec![]),
        node("Concat", &["rows", "cols"], "t", vec![attr_i("axis", 0)]),
        node("Reshape", &["m", "t"], "y", vec![]),
    ];
    let inits = vec![
        i64_scalar("zero", 0),
        i64_scalar("one", 1),
        i64_tensor("pick", &[0, 5, 2, 7]),
        i64_tensor("i0", &[0]),
        i64_tensor("cap", &[1000]),
        i64_tensor("m1", &[-1]),
        i64_tensor("m5", &[-5]),
        i64_tensor("m3", &[-3]),
    ];
    cases.push(case("Range Equal Min Max", model(13, &[4], nodes, inits), 3, &[4]));
    // Slice forward and backward (steps, axes inputs), then Concat and Reshape: [N, 4, 3].
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("Slice", &["s", "b0", "e1"], "n", vec![]),
        node("Slice", &["s", "bm1", "emin", "ax0", "stm1"], "rev", vec![]),
        node("Slice", &["rev", "b0", "e2"], "dims", vec![]),
        node("Concat", &["n", "dims"], "t", vec![attr_i("axis", 0)]),
        node("Reshape", &["x", "t"], "y", vec![]),
    ];
    let inits = vec![
        i64_tensor("b0", &[0]),
        i64_tensor("e1", &[1]),
        i64_tensor("e2", &[2]),
        i64_tensor("bm1", &[-1]),
        i64_tensor("emin", &[i64::MIN]),
        i64_tensor("ax0", &[0]),
        i64_tensor("stm1", &[-1]),
    ];
    cases.push(case("Slice with steps", model(13, &[3, 4], nodes, inits), 2, &[3, 4]));
    // Slice in its attribute form (opset 9).
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("Slice", &["s"], "n", vec![attr_ints("starts", &[0]), attr_ints("ends", &[1])]),
        node("Concat", &["n", "m1"], "t", vec![attr_i("axis", 0)]),
        node("Reshape", &["x", "t"], "y", vec![]),
    ];
    cases.push(case("Slice opset 9", model(9, &[3, 4], nodes, vec![i64_tensor("m1", &[-1])]), 2, &[3, 4]));
    // Constant in its value_ints form as a reshape target, and its tensor form as an operand.
    let nodes = vec![
        node("Constant", &[], "t", vec![attr_ints("value_ints", &[0, -1])]),
        node("Reshape", &["x", "t"], "r", vec![]),
        node("Constant", &[], "k", vec![attr_t("value", f32_tensor("", &[12], &weights(12, 23)))]),
        node("Mul", &["r", "k"], "y", vec![]),
    ];
    cases.push(case("Constant forms", model(13, &[3, 4], nodes, vec![]), 2, &[3, 4]));
    // Constant's value_float(s) and value_ints forms (function bodies such as GroupNormalization
    // and MeanVarianceNormalization, expanded, use them).
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
    cases.push(case("Constant value_float(s)/value_ints", model(13, &[3, 4], nodes, vec![]), 2, &[3, 4]));
    // Sum, Mean, Min, Max and Reciprocal fold on constants: a reshape target [Max(2, 1/1) + 1/1,
    // Mean(4, Min(8, 9)) * 2] = [3, 12].
    let k = |name: &str, v: f32| {
        let a = pb::AttributeProto { name: "value_floats".into(), r#type: 6, floats: vec![v], ..Default::default() };
        node("Constant", &[], name, vec![a])
    };
    let nodes = vec![
        k("one", 1.0),
        k("two", 2.0),
        k("four", 4.0),
        k("eight", 8.0),
        k("nine", 9.0),
        node("Reciprocal", &["one"], "r", vec![]),
        node("Max", &["two", "r"], "mx", vec![]),
        node("Sum", &["mx", "r"], "rows", vec![]),
        node("Min", &["eight", "nine"], "mn", vec![]),
        node("Mean", &["four", "mn"], "six", vec![]),
        node("Sum", &["six", "six"], "cols", vec![]),
        node("Concat", &["rows", "cols"], "t", vec![attr_i("axis", 0)]),
        node("Cast", &["t"], "ti", vec![attr_i("to", 7)]),
        node("Reshape", &["x", "ti"], "y", vec![]),
    ];
    cases.push(case("Sum, Mean, Min, Max, Reciprocal folded", model(13, &[36], nodes, vec![]), 1, &[36]));
    cases
}

/// An int64 tensor of any shape.
fn i64_nd(name: &str, dims: &[usize], data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// Run-time integer and boolean tensors: comparisons, logic, Where, casts, indexing, scatters,
/// arg-reductions, TopK (two outputs), Split (several outputs), Expand, Tile. Integer and boolean
/// results are cast to float at the end (the harness compares float outputs).
fn typed_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let c0 = f32_tensor("c0", &[], &[0.25]);
    let c1 = f32_tensor("c1", &[], &[-0.5]);
    let nodes = vec![
        node("Less", &["x", "c0"], "l", vec![]),
        node("Greater", &["x", "c1"], "g", vec![]),
        node("LessOrEqual", &["x", "c0"], "le", vec![]),
        node("GreaterOrEqual", &["x", "c1"], "ge", vec![]),
        node("Cast", &["l"], "lf", vec![attr_i("to", 1)]),
        node("Cast", &["le"], "lef", vec![attr_i("to", 1)]),
        node("Equal", &["lf", "lef"], "eq", vec![]),
        node("And", &["l", "ge"], "a", vec![]),
        node("Or", &["g", "le"], "o", vec![]),
        node("Xor", &["a", "o"], "xo", vec![]),
        node("Xor", &["xo", "eq"], "xe", vec![]),
        node("Not", &["xe"], "n", vec![]),
        node("Neg", &["x"], "nx", vec![]),
        node("Where", &["n", "x", "nx"], "y", vec![]),
    ];
    cases.push(case("comparisons, logic, Where", model(13, &[3, 5], nodes, vec![c0, c1]), 2, &[3, 5]));
    let nodes = vec![
        node("Less", &["x", "c0"], "l", vec![]),
        node("Cast", &["l"], "li", vec![attr_i("to", 7)]),
        node("Cast", &["x"], "xi", vec![attr_i("to", 7)]),
        node("Add", &["li", "xi"], "s", vec![]),
        node("Div", &["s", "two"], "q", vec![]),
        node("CastLike", &["q", "c0"], "y", vec![]),
    ];
    let inits = vec![f32_tensor("c0", &[], &[0.25]), i64_scalar("two", 2)];
    cases.push(case("Cast to int64, integer Div, CastLike", model(15, &[7], nodes, inits), 3, &[7]));
    for (op, axis, keepdims, last) in [("ArgMax", 1, 1, 0), ("ArgMin", 2, 0, 1), ("ArgMax", -1, 0, 1)] {
        let nodes = vec![
            node("Cast", &["x"], "xi", vec![attr_i("to", 7)]),
            node("Cast", &["xi"], "r", vec![attr_i("to", 1)]),
            node(
                op,
                &["r"],
                "i",
                vec![attr_i("axis", axis), attr_i("keepdims", keepdims), attr_i("select_last_index", last)],
            ),
            node("Cast", &["i"], "y", vec![attr_i("to", 1)]),
        ];
        cases.push(case(
            format!("{op} axis {axis} keepdims {keepdims} last {last}"),
            model(13, &[4, 5], nodes, vec![]),
            2,
            &[4, 5],
        ));
    }
    let nodes = vec![node("Expand", &["x", "shape"], "y", vec![])];
    cases.push(case("Expand", model(13, &[1, 3], nodes, vec![i64_tensor("shape", &[1, 4, 3])]), 2, &[1, 3]));
    let nodes = vec![node("Tile", &["x", "reps"], "y", vec![])];
    cases.push(case("Tile", model(13, &[2, 3], nodes, vec![i64_tensor("reps", &[2, 1, 3])]), 2, &[2, 3]));
    // Gathers and scatters on a batch of 2 ([2, 3, 4]); the indices include negative ones.
    let idx = i64_nd("idx", &[2, 3, 2], &[0, -1, 3, 1, 2, 2, -4, 0, 1, 3, 2, -2]);
    let nodes = vec![node("GatherElements", &["x", "idx"], "y", vec![attr_i("axis", 2)])];
    cases.push(case("GatherElements", model(13, &[3, 4], nodes, vec![idx]), 2, &[3, 4]));
    let distinct = i64_nd("idx", &[2, 3, 2], &[0, 3, 1, 2, 2, -1, 0, 1, 3, 2, -3, 0]);
    let upd = f32_tensor("upd", &[2, 3, 2], &weights(12, 40));
    for (opset, op, reduction) in
        [(11, "ScatterElements", None), (16, "ScatterElements", Some("add")), (10, "Scatter", None)]
    {
        let mut attrs = vec![attr_i("axis", 2)];
        attrs.extend(reduction.map(|r| attr_s("reduction", r)));
        let nodes = vec![node(op, &["x", "idx", "upd"], "y", attrs)];
        let inits = vec![distinct.clone(), upd.clone()];
        cases.push(case(format!("{op} opset {opset} {reduction:?}"), model(opset, &[3, 4], nodes, inits), 2, &[3, 4]));
    }
    let pairs = i64_nd("idx", &[3, 2], &[0, 1, 1, 2, 0, 0]);
    let nodes = vec![node("GatherND", &["x", "idx"], "y", vec![])];
    cases.push(case("GatherND", model(12, &[3, 4], nodes, vec![pairs.clone()]), 2, &[3, 4]));
    let per_batch = i64_nd("idx", &[2, 1], &[2, 0]);
    let nodes = vec![node("GatherND", &["x", "idx"], "y", vec![attr_i("batch_dims", 1)])];
    cases.push(case("GatherND batch_dims 1", model(12, &[3, 4], nodes, vec![per_batch]), 2, &[3, 4]));
    let tuples = i64_nd("idx", &[2, 2], &[0, 1, 1, 2]);
    let nodes = vec![node("ScatterND", &["x", "idx", "upd"], "y", vec![])];
    let inits = vec![tuples, f32_tensor("upd", &[2, 4], &weights(8, 41))];
    cases.push(case("ScatterND", model(13, &[3, 4], nodes, inits), 2, &[3, 4]));
    // OneHot of run-time indices (an ArgMax), Gather of a trainable table at run-time indices.
    let nodes = vec![
        node("ArgMax", &["x"], "i", vec![attr_i("axis", 1), attr_i("keepdims", 0)]),
        node("OneHot", &["i", "depth", "vals"], "oh", vec![attr_i("axis", -1)]),
        node("Gather", &["table", "i"], "emb", vec![attr_i("axis", 0)]),
        node("Concat", &["oh", "emb"], "y", vec![attr_i("axis", 1)]),
    ];
    let inits = vec![
        i64_scalar("depth", 6),
        f32_tensor("vals", &[2], &[-1.0, 2.0]),
        f32_tensor("table", &[5, 3], &weights(15, 42)),
    ];
    cases.push(case("OneHot, Gather of a table at run-time ids", model(13, &[5], nodes, inits), 4, &[5]));
    for (op, keepdims) in [("ReduceMax", 0), ("ReduceMin", 1)] {
        let nodes = vec![node(op, &["x"], "y", vec![attr_ints("axes", &[1]), attr_i("keepdims", keepdims)])];
        cases.push(case(format!("{op} keepdims {keepdims}"), model(13, &[3, 4], nodes, vec![]), 2, &[3, 4]));
    }
    let mut split = node("Split", &["x", "sizes"], "a", vec![attr_i("axis", 1)]);
    split.output.push("b".into());
    let nodes = vec![split, node("Concat", &["b", "a"], "y", vec![attr_i("axis", 1)])];
    cases.push(case("Split into two outputs", model(13, &[6], nodes, vec![i64_tensor("sizes", &[2, 4])]), 3, &[6]));
    for (opset, largest) in [(10, 1), (11, 0)] {
        let mut topk = node("TopK", &["x", "k"], "v", vec![attr_i("axis", -1)]);
        if opset >= 11 {
            topk.attribute.push(attr_i("largest", largest));
        }
        topk.output.push("i".into());
        let nodes =
            vec![topk, node("Cast", &["i"], "fi", vec![attr_i("to", 1)]), node("Add", &["v", "fi"], "y", vec![])];
        cases.push(case(
            format!("TopK opset {opset} largest {largest}"),
            model(opset, &[7], nodes, vec![i64_tensor("k", &[3])]),
            3,
            &[7],
        ));
    }
    for (start, end, step) in [(0, 6, 2), (5, -7, -1), (-1, 0, -2)] {
        let nodes = vec![node("Slice", &["x", "s", "e", "a", "st"], "y", vec![])];
        let inits =
            vec![i64_tensor("s", &[start]), i64_tensor("e", &[end]), i64_tensor("a", &[1]), i64_tensor("st", &[step])];
        cases.push(case(format!("Slice {start}..{end} by {step}"), model(13, &[6], nodes, inits), 2, &[6]));
    }
    cases
}

/// The ops of issue 10's first batch: more elementwise functions, Mod, the composite reductions,
/// LayerNormalization and Gelu (decomposed on import).
fn composite_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // Scan over axis 1 of [N, 4, 3]: s = s + x_t * w, scan output tanh(s); forwards and backwards.
    // (The body's shapes give the batch of 2 the case runs at: tract does not carry the outer
    // graph's batch symbol into the body.)
    for dir in [0, 1] {
        let b: &[Option<usize>] = &[Some(2), Some(3)];
        let body = subgraph(
            &[("s", b), ("xt", b)],
            &[("s2", b), ("o", b)],
            vec![
                node("Mul", &["xt", "w"], "xw", vec![]),
                node("Add", &["s", "xw"], "s2", vec![]),
                node("Tanh", &["s2"], "o", vec![]),
            ],
        );
        let attrs = vec![
            attr_g("body", body),
            attr_i("num_scan_inputs", 1),
            attr_ints("scan_input_axes", &[1]),
            attr_ints("scan_output_axes", &[1]),
            attr_ints("scan_input_directions", &[dir]),
            attr_ints("scan_output_directions", &[dir]),
        ];
        let mut scan = node("Scan", &["s0", "x"], "last", attrs);
        scan.output = vec!["last".into(), "seq".into()];
        let nodes = vec![
            node("ReduceMean", &["x"], "s0", vec![attr_ints("axes", &[1]), attr_i("keepdims", 0)]),
            scan,
            node("Unsqueeze", &["last", "ax1"], "lu", vec![]),
            node("Add", &["seq", "lu"], "y", vec![]),
        ];
        let inits = vec![f32_tensor("w", &[3], &[0.5, -1.0, 0.25]), i64_tensor("ax1", &[1])];
        cases.push(case(format!("Scan direction {dir}"), model(13, &[4, 3], nodes, inits), 2, &[4, 3]));
    }
    for op in
        ["Erf", "Floor", "Ceil", "Round", "Sign", "Softsign", "Sin", "Cos", "Tan", "Atan", "Sinh", "Cosh", "Asinh"]
    {
        cases.push(case(op, model(13, &[7], vec![node(op, &["x"], "y", vec![])], vec![]), 3, &[7]));
    }
    // The functions defined on part of the line, on the values of one that maps into it.
    for (inner, op) in [("Sin", "Asin"), ("Sin", "Acos"), ("Tanh", "Atanh"), ("Cosh", "Acosh")] {
        let nodes = vec![node(inner, &["x"], "u", vec![]), node(op, &["u"], "y", vec![])];
        cases.push(case(format!("{op} of {inner}"), model(13, &[7], nodes, vec![]), 3, &[7]));
    }
    for fmod in [0, 1] {
        let b = f32_tensor("b", &[4], &[0.75, -1.25, 2.0, -0.5]);
        let nodes = vec![node("Mod", &["x", "b"], "y", vec![attr_i("fmod", fmod)])];
        cases.push(case(format!("Mod fmod {fmod}"), model(13, &[3, 4], nodes, vec![b]), 2, &[3, 4]));
    }
    for op in ["ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"] {
        for keepdims in [0, 1] {
            let nodes = vec![node(op, &["x"], "y", vec![attr_ints("axes", &[1]), attr_i("keepdims", keepdims)])];
            cases.push(case(format!("{op} keepdims {keepdims}"), model(13, &[3, 4], nodes, vec![]), 2, &[3, 4]));
        }
    }
    let nodes = vec![
        node("Abs", &["x"], "a", vec![]),
        node("ReduceLogSum", &["a"], "y", vec![attr_ints("axes", &[2]), attr_i("keepdims", 0)]),
    ];
    cases.push(case("ReduceLogSum", model(13, &[3, 4], nodes, vec![]), 2, &[3, 4]));
    let mut ln = node("LayerNormalization", &["x", "scale", "bias"], "y", vec![attr_i("axis", -1)]);
    ln.attribute.push(attr_f("epsilon", 1e-3));
    let inits = vec![f32_tensor("scale", &[4], &weights(4, 50)), f32_tensor("bias", &[4], &weights(4, 51))];
    cases.push(case("LayerNormalization", model(17, &[3, 4], vec![ln], inits), 2, &[3, 4]));
    // LRN across channels: odd, even and longer-than-the-channels windows.
    for (size, attrs, dims) in [
        (3, vec![attr_f("alpha", 1e-2), attr_f("beta", 0.6), attr_f("bias", 1.5)], [5, 2, 3]),
        (4, vec![], [6, 2, 2]),
        (9, vec![attr_f("alpha", 0.5)], [3, 2, 2]),
    ] {
        let mut attrs = attrs;
        attrs.push(attr_i("size", size));
        let m = model(13, &dims, vec![node("LRN", &["x"], "y", attrs)], vec![]);
        cases.push(case(format!("LRN size {size}"), m, 2, &dims));
    }
    let mvn = model(13, &[3, 2, 2], vec![node("MeanVarianceNormalization", &["x"], "y", vec![])], vec![]);
    cases.push(case("MeanVarianceNormalization", mvn, 2, &[3, 2, 2]));
    let mvn = node("MeanVarianceNormalization", &["x"], "y", vec![attr_ints("axes", &[-1, 1])]);
    cases.push(case("MeanVarianceNormalization axes", model(13, &[4, 3], vec![mvn], vec![]), 2, &[4, 3]));
    // Recurrent layers, unrolled: X is [seq (the bound batch dim), 2, 3], hidden 4.
    let (h, i) = (4usize, 3usize);
    // (Reverse and bidirectional layers: `reverse_and_bidirectional_recurrent_layers`.)
    for (op, gates) in [("LSTM", 4), ("GRU", 3), ("RNN", 1)] {
        for (direction, lbr) in [("forward", 0), ("forward", 1)] {
            if lbr == 1 && op != "GRU" {
                continue;
            }
            let d = 1;
            let mut inits = vec![
                f32_tensor("W", &[d, gates * h, i], &weights(d * gates * h * i, 60)),
                f32_tensor("R", &[d, gates * h, h], &weights(d * gates * h * h, 61)),
                f32_tensor("B", &[d, 2 * gates * h], &weights(d * 2 * gates * h, 62)),
                f32_tensor("h0", &[d, 2, h], &weights(d * 2 * h, 63)),
            ];
            let mut ins = vec!["x", "W", "R", "B", "", "h0"];
            if op == "LSTM" {
                inits.push(f32_tensor("c0", &[d, 2, h], &weights(d * 2 * h, 64)));
                inits.push(f32_tensor("P", &[d, 3 * h], &weights(d * 3 * h, 65)));
                ins.extend(["c0", "P"]);
            }
            let mut attrs = vec![attr_i("hidden_size", h as i64), attr_s("direction", direction)];
            if op == "GRU" {
                attrs.push(attr_i("linear_before_reset", lbr));
            }
            let mut n = node(op, &ins, "yall", attrs);
            n.output.push("yh".into());
            // Y [T, D, N, H] and Y_h [D, N, H] both reach the output.
            let nodes = vec![
                n,
                node("ReduceSum", &["yall"], "ys", vec![attr_ints("axes", &[0]), attr_i("keepdims", 0)]),
                node("Add", &["ys", "yh"], "y", vec![]),
            ];
            cases.push(case(format!("{op} {direction} lbr {lbr}"), model(13, &[2, i], nodes, inits), 5, &[2, i]));
        }
    }

    // Activations, normalizations, padding and space/depth moves decomposed on import.
    for (op, opset, attrs) in [
        ("Mish", 18, vec![]),
        ("ThresholdedRelu", 10, vec![attr_f("alpha", 0.3)]),
        ("Shrink", 9, vec![attr_f("bias", 0.25), attr_f("lambd", 0.4)]),
        ("Hardmax", 13, vec![attr_i("axis", -1)]),
        ("Hardmax", 11, vec![attr_i("axis", 1)]),
        ("LpNormalization", 13, vec![attr_i("axis", -1), attr_i("p", 2)]),
        ("LpNormalization", 13, vec![attr_i("axis", 1), attr_i("p", 1)]),
    ] {
        let nodes = vec![node(op, &["x"], "y", attrs)];
        cases.push(case(format!("{op} opset {opset}"), model(opset, &[3, 4], nodes, vec![]), 2, &[3, 4]));
    }
    let inits = vec![f32_tensor("s", &[4], &[1.0, 0.5, -2.0, 0.25]), f32_tensor("b", &[4], &[0.0, 0.25, 1.0, -1.0])];
    let nodes = vec![node("GroupNormalization", &["x", "s", "b"], "y", vec![attr_i("num_groups", 2)])];
    cases.push(case("GroupNormalization opset 21", model(21, &[4, 5], nodes, inits), 2, &[4, 5]));
    let nodes = vec![node("RMSNormalization", &["x", "s"], "y", vec![attr_i("axis", -1)])];
    cases.push(case(
        "RMSNormalization",
        model(23, &[3, 4], nodes, vec![f32_tensor("s", &[4], &weights(4, 80))]),
        2,
        &[3, 4],
    ));
    let nodes = vec![node("PRelu", &["x", "slope"], "y", vec![])];
    let slope = f32_tensor("slope", &[4], &[0.1, -0.2, 0.3, 2.0]);
    cases.push(case("PRelu", model(13, &[3, 4], nodes, vec![slope]), 2, &[3, 4]));
    // ConvTranspose: strides, pads, output_padding, groups, dilations, output_shape, auto_pad, bias.
    for (name, dims, w_dims, attrs) in [
        (
            "2-d stride 2 pads 1 output_padding 1",
            vec![4, 5, 5],
            vec![4, 3, 3, 3],
            vec![attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1]), attr_ints("output_padding", &[1, 1])],
        ),
        ("2-d group 2", vec![4, 3, 4], vec![4, 1, 2, 3], vec![attr_i("group", 2), attr_ints("strides", &[1, 2])]),
        ("1-d dilation 2", vec![3, 7], vec![3, 2, 3], vec![attr_ints("dilations", &[2])]),
        (
            "1-d SAME_UPPER",
            vec![3, 5],
            vec![3, 2, 3],
            vec![attr_ints("strides", &[2]), attr_s("auto_pad", "SAME_UPPER")],
        ),
    ] {
        let c_out = w_dims[1] * if name.contains("group 2") { 2 } else { 1 };
        let inits = vec![
            f32_tensor("w", &w_dims, &weights(w_dims.iter().product(), 90)),
            f32_tensor("b", &[c_out], &weights(c_out, 91)),
        ];
        let nodes = vec![node("ConvTranspose", &["x", "w", "b"], "y", attrs)];
        cases.push(case(format!("ConvTranspose {name}"), model(13, &dims, nodes, inits), 2, &dims));
    }
    let nodes = vec![node("GlobalMaxPool", &["x"], "y", vec![])];
    cases.push(case("GlobalMaxPool", model(13, &[3, 4, 5], nodes, vec![]), 2, &[3, 4, 5]));
    let inits = vec![f32_tensor("s", &[3], &[1.0, 0.5, -2.0]), f32_tensor("b", &[3], &[0.0, 0.25, 1.0])];
    let nodes = vec![node("InstanceNormalization", &["x", "s", "b"], "y", vec![attr_f("epsilon", 1e-3)])];
    cases.push(case("InstanceNormalization", model(13, &[3, 4, 5], nodes, inits), 2, &[3, 4, 5]));
    let nodes = vec![node("Pad", &["x", "pads", "cv"], "y", vec![attr_s("mode", "constant")])];
    let inits = vec![i64_tensor("pads", &[0, 2, 1, 1, 0, 0, 3, 2]), f32_tensor("cv", &[], &[0.5])];
    cases.push(case("Pad constant", model(13, &[3, 4, 5], nodes, inits), 2, &[3, 4, 5]));
    let nodes = vec![node("Pad", &["x"], "y", vec![attr_ints("pads", &[0, 1, 0, 2]), attr_f("value", -1.0)])];
    cases.push(case("Pad opset 2", model(2, &[3], nodes, vec![]), 2, &[3]));
    for (op, attrs) in [
        ("DepthToSpace", vec![attr_i("blocksize", 2)]),
        ("DepthToSpace", vec![attr_i("blocksize", 2), attr_s("mode", "CRD")]),
        ("SpaceToDepth", vec![attr_i("blocksize", 2)]),
    ] {
        let dims: &[usize] = if op == "SpaceToDepth" { &[2, 4, 6] } else { &[8, 3, 2] };
        let nodes = vec![node(op, &["x"], "y", attrs)];
        cases.push(case(op, model(13, dims, nodes, vec![]), 2, dims));
    }
    for approximate in ["none", "tanh"] {
        let nodes = vec![node("Gelu", &["x"], "y", vec![attr_s("approximate", approximate)])];
        cases.push(case(format!("Gelu {approximate}"), model(20, &[7], nodes, vec![]), 3, &[7]));
    }
    cases
}

/// Resize in its modes, coordinate transformations and forms (scales, sizes, roi, axes,
/// antialias, keep_aspect_ratio_policy), on `[N, 2, 3, 4]` with the batch axis kept.
fn resize_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let dims = [2, 3, 4];
    let f = |name: &str, v: &[f32]| f32_tensor(name, &[v.len()], v);
    // Opset 10: X and scales; asymmetric (scale 2 rounds the same way in every nearest mode).
    for (mode, scales) in [("nearest", [1.0, 1.0, 2.0, 2.0]), ("linear", [1.0, 1.0, 2.0, 1.5])] {
        let nodes = vec![node("Resize", &["x", "s"], "y", vec![attr_s("mode", mode)])];
        cases.push(case(format!("Resize opset 10 {mode}"), model(10, &dims, nodes, vec![f("s", &scales)]), 2, &dims));
    }
    // Opset 11: roi and scales given (empty), sizes.
    let nodes = vec![node(
        "Resize",
        &["x", "roi", "s", "z"],
        "y",
        vec![attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", "align_corners")],
    )];
    let inits = vec![f("roi", &[]), f("s", &[]), i64_tensor("z", &[2, 2, 5, 7])];
    cases.push(case("Resize opset 11 sizes align_corners", model(11, &dims, nodes, inits), 2, &dims));
    // Opset 11's tf_half_pixel_for_nn (gone at 13), from scales with the roi given.
    for mode in ["nearest", "linear"] {
        let attrs = vec![attr_s("mode", mode), attr_s("coordinate_transformation_mode", "tf_half_pixel_for_nn")];
        let nodes = vec![node("Resize", &["x", "roi", "s"], "y", attrs)];
        let inits = vec![f("roi", &[]), f("s", &[1.0, 1.0, 1.5, 0.5])];
        cases.push(case(
            format!("Resize opset 11 {mode} tf_half_pixel_for_nn"),
            model(11, &dims, nodes, inits),
            2,
            &dims,
        ));
    }
    // Opset 13: every mode and coordinate transformation, up and down.
    for (mode, coord, nearest, scales) in [
        ("nearest", "half_pixel", "round_prefer_floor", [1.0, 1.0, 2.5, 0.75]),
        ("nearest", "asymmetric", "round_prefer_ceil", [1.0, 0.5, 1.7, 2.0]),
        ("nearest", "align_corners", "floor", [1.0, 1.0, 3.0, 1.5]),
        ("nearest", "half_pixel", "ceil", [1.0, 1.0, 0.6, 2.25]),
        ("linear", "half_pixel", "round_prefer_floor", [1.0, 1.5, 2.0, 0.5]),
        ("linear", "pytorch_half_pixel", "round_prefer_floor", [1.0, 1.0, 0.67, 1.75]),
        ("linear", "asymmetric", "round_prefer_floor", [1.0, 1.0, 1.5, 0.8]),
        ("cubic", "half_pixel", "round_prefer_floor", [1.0, 1.0, 2.0, 1.25]),
        ("cubic", "align_corners", "round_prefer_floor", [1.0, 1.0, 1.5, 0.75]),
        ("cubic", "asymmetric", "round_prefer_floor", [1.0, 1.0, 0.7, 2.0]),
    ] {
        let attrs = vec![
            attr_s("mode", mode),
            attr_s("coordinate_transformation_mode", coord),
            attr_s("nearest_mode", nearest),
        ];
        let nodes = vec![node("Resize", &["x", "", "s"], "y", attrs)];
        let name = format!("Resize opset 13 {mode} {coord} {nearest} {scales:?}");
        cases.push(case(name, model(13, &dims, nodes, vec![f("s", &scales)]), 2, &dims));
    }
    // cubic_coeff_a and exclude_outside.
    let attrs = vec![attr_s("mode", "cubic"), attr_f("cubic_coeff_a", -0.5), attr_i("exclude_outside", 1)];
    let nodes = vec![node("Resize", &["x", "", "s"], "y", attrs)];
    let inits = vec![f("s", &[1.0, 1.0, 1.5, 0.75])];
    cases.push(case("Resize cubic a -0.5 exclude_outside", model(13, &dims, nodes, inits), 2, &dims));
    // tf_crop_and_resize with an extrapolation value, from sizes.
    let attrs = vec![
        attr_s("mode", "linear"),
        attr_s("coordinate_transformation_mode", "tf_crop_and_resize"),
        attr_f("extrapolation_value", 2.5),
    ];
    let nodes = vec![node("Resize", &["x", "roi", "", "z"], "y", attrs)];
    let inits = vec![f("roi", &[0.0, 0.0, 0.2, -0.3, 1.0, 1.0, 0.9, 1.4]), i64_tensor("z", &[2, 2, 4, 5])];
    cases.push(case("Resize tf_crop_and_resize", model(13, &dims, nodes, inits), 2, &dims));
    // Opset 18: axes (one of them negative), antialias, keep_aspect_ratio_policy; 19's
    // half_pixel_symmetric.
    for (mode, antialias, scales) in [("linear", 1, [0.5, 0.6]), ("cubic", 1, [0.7, 0.45]), ("linear", 0, [1.5, 0.5])] {
        let attrs = vec![attr_s("mode", mode), attr_i("antialias", antialias), attr_ints("axes", &[-1, 2])];
        let nodes = vec![node("Resize", &["x", "", "s"], "y", attrs)];
        let name = format!("Resize opset 18 {mode} antialias {antialias} axes");
        cases.push(case(name, model(18, &dims, nodes, vec![f("s", &scales)]), 2, &dims));
    }
    for policy in ["not_larger", "not_smaller"] {
        let attrs =
            vec![attr_s("mode", "nearest"), attr_ints("axes", &[2, 3]), attr_s("keep_aspect_ratio_policy", policy)];
        let nodes = vec![node("Resize", &["x", "", "", "z"], "y", attrs)];
        cases.push(case(format!("Resize {policy}"), model(18, &dims, nodes, vec![i64_tensor("z", &[7, 5])]), 2, &dims));
    }
    // pytorch_half_pixel to a length of 1 (the reference's -0.5 and the spec's 0 read the same
    // input position in linear mode).
    let attrs = vec![
        attr_s("mode", "linear"),
        attr_s("coordinate_transformation_mode", "pytorch_half_pixel"),
        attr_ints("axes", &[2]),
    ];
    let nodes = vec![node("Resize", &["x", "", "", "z"], "y", attrs)];
    cases.push(case("Resize pytorch_half_pixel to 1", model(18, &dims, nodes, vec![i64_tensor("z", &[1])]), 2, &dims));
    // PyTorch's F.interpolate(size=...) export: the sizes from the input's shape (batch and
    // channels) and the target (6, 7), folded at import.
    let nodes = vec![
        node("Shape", &["x"], "sh", vec![]),
        node("Slice", &["sh", "st", "en"], "nc", vec![]),
        node("Concat", &["nc", "hw"], "z", vec![attr_i("axis", 0)]),
        node(
            "Resize",
            &["x", "", "", "z"],
            "y",
            vec![
                attr_s("mode", "linear"),
                attr_s("coordinate_transformation_mode", "pytorch_half_pixel"),
                attr_s("nearest_mode", "floor"),
            ],
        ),
    ];
    let inits = vec![i64_tensor("st", &[0]), i64_tensor("en", &[2]), i64_tensor("hw", &[6, 7])];
    cases.push(case("Resize sizes from a shape chain", model(13, &dims, nodes, inits), 2, &dims));
    // Nearest on integers (a gather of any type).
    let nodes = vec![
        node("Cast", &["x"], "i", vec![attr_i("to", 7)]),
        node("Resize", &["i", "", "s"], "r", vec![attr_s("mode", "nearest")]),
        node("Cast", &["r"], "y", vec![attr_i("to", 1)]),
    ];
    cases.push(case("Resize nearest of int64", model(13, &dims, nodes, vec![f("s", &[1.0, 1.0, 1.5, 0.5])]), 2, &dims));
    let attrs = vec![attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", "half_pixel_symmetric")];
    let nodes = vec![node("Resize", &["x", "", "s"], "y", attrs)];
    let inits = vec![f("s", &[1.0, 1.0, 1.7, 0.6])];
    cases.push(case("Resize half_pixel_symmetric", model(19, &dims, nodes, inits), 2, &dims));
    cases
}

fn all_cases() -> Vec<Case> {
    [
        gemm_cases(),
        elementwise_cases(),
        softmax_cases(),
        conv_pool_batchnorm_cases(),
        shape_cases(),
        constant_form_cases(),
        typed_cases(),
        composite_cases(),
        resize_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn every_registered_op_has_a_case() {
    let covered: HashSet<String> =
        all_cases().iter().chain(definition_cases().iter().map(|(c, _)| c)).flat_map(|c| op_types(&c.bytes)).collect();
    let missing: Vec<&str> = distk_onnx::ops::all().map(|d| d.op_type).filter(|op| !covered.contains(*op)).collect();
    assert!(missing.is_empty(), "registered ops without a case against tract: {missing:?}");
}

#[test]
fn gemm_and_matmul() {
    run(gemm_cases());
}

#[test]
fn elementwise_ops_and_activations() {
    run(elementwise_cases());
}

#[test]
fn softmax_axis_semantics_before_and_from_opset_13() {
    run(softmax_cases());
}

#[test]
fn conv_pool_and_batchnorm_forms() {
    run(conv_pool_batchnorm_cases());
}

#[test]
fn shape_ops_fold_and_reshape_forms() {
    run(shape_cases());
}

#[test]
fn integer_and_boolean_tensors_at_run_time() {
    run(typed_cases());
}

#[test]
fn elementwise_functions_remainders_and_composite_reductions_and_norms() {
    run(composite_cases());
}

#[test]
fn resize_modes_coordinates_and_forms() {
    // Every case checked, then every failure named.
    let failures: Vec<String> = resize_cases()
        .iter()
        .filter_map(|c| match compare(&c.name, &c.bytes, c.batch, &c.x_dims) {
            Ok(e) if e <= TOLERANCE => None,
            Ok(e) => Some(format!("{}: error {e:e} against tract", c.name)),
            Err(e) => Some(format!("{}: {e}", c.name)),
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn constant_forms_and_shape_chains() {
    run(constant_form_cases());
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

fn coverage_error(bytes: Vec<u8>) -> distk_onnx::Coverage {
    let m = OnnxModel::from_bytes(bytes, "coverage").unwrap();
    match import(&m, 1) {
        Err(ImportError::Unsupported(c)) => c,
        other => panic!("expected one Unsupported error, got {other:?}"),
    }
}

#[test]
fn unsupported_ops_are_all_listed_in_one_error() {
    let nodes = vec![
        node("Relu", &["x"], "a", vec![]),
        node("Unique", &["a"], "b", vec![]),
        node("Unique", &["b"], "c", vec![]),
        node("Det", &["c"], "d", vec![]),
        node("Relu", &["d"], "y", vec![]),
    ];
    let cov = coverage_error(model(13, &[4], nodes, vec![]));
    let summary: Vec<(String, usize)> = cov.ops.iter().map(|u| (u.op_type.clone(), u.count)).collect();
    assert_eq!(summary, vec![("Unique".to_string(), 2), ("Det".to_string(), 1)]);
    assert!(cov.nodes.is_empty(), "{:?}", cov.nodes);
    let text = ImportError::Unsupported(cov).to_string();
    assert!(text.contains("Unique x2 (nodes: Unique_b, Unique_c)") && text.contains("Det x1"), "{text}");
}

#[test]
fn every_node_needing_a_run_time_form_is_named_in_one_error() {
    // Range on run-time values, a Reshape whose target is computed at run time (by a Slice of
    // run-time data, which itself has a run-time form), and an unknown op: one error names all of
    // them. Gather has run-time forms (of run-time data, of a trainable table).
    let nodes = vec![
        node("Gather", &["x", "i0"], "g", vec![attr_i("axis", 1)]),
        node("Slice", &["x", "b0", "e1", "ax1"], "sl", vec![]),
        node("Range", &["zero", "g", "one"], "rg", vec![]),
        node("Unique", &["x"], "er", vec![]),
        node("Reshape", &["x", "sl"], "r", vec![]),
        node("Gather", &["w", "i0"], "gw", vec![attr_i("axis", 0)]),
        node("Add", &["r", "gw"], "y", vec![]),
    ];
    let inits = vec![
        i64_scalar("i0", 0),
        i64_tensor("b0", &[0]),
        i64_tensor("e1", &[1]),
        i64_tensor("ax1", &[1]),
        i64_scalar("zero", 0),
        i64_scalar("one", 1),
        f32_tensor("w", &[2, 4], &weights(8, 30)),
    ];
    let cov = coverage_error(model(13, &[4], nodes, inits));
    assert_eq!(cov.ops.iter().map(|u| u.op_type.as_str()).collect::<Vec<_>>(), vec!["Unique"]);
    let named: Vec<&str> = cov.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(named, vec!["Range_rg", "Reshape_r"], "{:?}", cov.nodes);
    assert!(cov.nodes[0].reason.contains("input 1 (limit) is computed at run time"), "{:?}", cov.nodes[0]);
    assert!(cov.nodes[1].reason.contains("input 1 (shape) must be known at import time"), "{:?}", cov.nodes[1]);
    let text = ImportError::Unsupported(cov).to_string();
    assert!(text.contains("Unique x1") && text.contains("2 node(s) need a form"), "{text}");
}

#[test]
fn ops_outside_their_opsets_and_unproduced_outputs_are_listed() {
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("ConstantOfShape", &["s"], "c", vec![]),
        node("Add", &["x", "c"], "y", vec![]),
    ];
    let cov = coverage_error(model(8, &[4], nodes, vec![]));
    assert_eq!(cov.ops.len(), 1, "{cov}");
    assert_eq!(cov.ops[0].op_type, "ConstantOfShape");
    assert!(cov.ops[0].opset.as_deref().is_some_and(|o| o.contains("opset 8") && o.contains("9..")), "{cov}");
    // BatchNormalization's saved statistics (opsets 6 to 13) are not produced.
    let mut bn = node("BatchNormalization", &["x", "s", "b", "m", "v"], "y", vec![]);
    bn.output.extend(["rm".into(), "rv".into(), "sm".into()]);
    let inits: Vec<pb::TensorProto> =
        ["s", "b", "m", "v"].iter().map(|n| f32_tensor(n, &[4], &[1.0, 0.5, 0.25, 2.0])).collect();
    let cov = coverage_error(model(9, &[4], vec![bn], inits));
    assert!(cov.nodes.len() == 1 && cov.nodes[0].reason.contains("output 3 (saved_mean"), "{cov}");
}

#[test]
fn malformed_nodes_are_errors_not_panics() {
    let scalar = |name: &str, v: i64| i64_scalar(name, v);
    let cases: Vec<(&str, Vec<pb::NodeProto>, Vec<pb::TensorProto>)> = vec![
        (
            "Concat of scalars",
            vec![node("Concat", &["a", "b"], "c", vec![attr_i("axis", 0)]), node("Reshape", &["x", "c"], "y", vec![])],
            vec![scalar("a", 1), scalar("b", 4)],
        ),
        (
            "Squeeze of a scalar",
            vec![node("Squeeze", &["a", "ax"], "c", vec![]), node("Reshape", &["x", "c"], "y", vec![])],
            vec![scalar("a", 4), i64_tensor("ax", &[0])],
        ),
        (
            "Slice with more starts than axes",
            vec![node("Slice", &["a", "st", "en", "ax"], "c", vec![]), node("Reshape", &["x", "c"], "y", vec![])],
            vec![i64_tensor("a", &[1, 4]), i64_tensor("st", &[0, 0]), i64_tensor("en", &[2]), i64_tensor("ax", &[0])],
        ),
        (
            "Transpose with a repeated axis",
            vec![node("Transpose", &["x"], "y", vec![attr_ints("perm", &[0, 0])])],
            vec![],
        ),
        (
            "Range of an empty tensor",
            vec![node("Range", &["e", "a", "a"], "c", vec![]), node("Reshape", &["x", "c"], "y", vec![])],
            vec![i64_tensor("e", &[]), scalar("a", 4)],
        ),
        (
            "ConstantOfShape of a huge shape",
            vec![node("ConstantOfShape", &["s"], "c", vec![]), node("Add", &["x", "c"], "y", vec![])],
            vec![i64_tensor("s", &[1 << 40, 1 << 40])],
        ),
        (
            "Gather out of range",
            vec![
                node("Shape", &["x"], "s", vec![]),
                node("Gather", &["s", "i"], "c", vec![]),
                node("Reshape", &["x", "c"], "y", vec![]),
            ],
            vec![i64_tensor("i", &[7])],
        ),
        ("Flatten past the rank", vec![node("Flatten", &["x"], "y", vec![attr_i("axis", 3)])], vec![]),
        (
            "MaxPool with a zero kernel",
            vec![node("MaxPool", &["x"], "y", vec![attr_ints("kernel_shape", &[0])])],
            vec![],
        ),
        (
            "Reshape to an overflowing shape",
            vec![node("Reshape", &["x", "s"], "y", vec![])],
            vec![i64_tensor("s", &[i64::MAX, i64::MAX, 2])],
        ),
        (
            "Unsqueeze with a repeated axis",
            vec![node("Unsqueeze", &["x", "a"], "y", vec![])],
            vec![i64_tensor("a", &[1, 1])],
        ),
        (
            "Conv with a rank-2 weight",
            vec![node("Conv", &["x", "w"], "y", vec![])],
            vec![f32_tensor("w", &[2, 4], &weights(8, 31))],
        ),
        ("Softmax axis out of range", vec![node("Softmax", &["x"], "y", vec![attr_i("axis", i64::MIN)])], vec![]),
    ];
    // Resize (x is [2, 4]): each form it refuses.
    let resize = |what: &'static str, inputs: &[&str], attrs: Vec<pb::AttributeProto>, inits: Vec<pb::TensorProto>| {
        (what, vec![node("Resize", inputs, "y", attrs)], inits)
    };
    let scales = |v: &[f32]| f32_tensor("s", &[v.len()], v);
    let cases = cases.into_iter().chain([
        resize(
            "Resize with scales and sizes",
            &["x", "", "s", "z"],
            vec![],
            vec![scales(&[1.0, 2.0]), i64_tensor("z", &[2, 8])],
        ),
        resize("Resize with neither scales nor sizes", &["x", "", "s"], vec![], vec![scales(&[])]),
        resize("Resize with a zero scale", &["x", "", "s"], vec![], vec![scales(&[1.0, 0.0])]),
        resize("Resize with a NaN scale", &["x", "", "s"], vec![], vec![scales(&[1.0, f32::NAN])]),
        resize("Resize with an infinite scale", &["x", "", "s"], vec![], vec![scales(&[1.0, f32::INFINITY])]),
        resize("Resize by a huge scale", &["x", "", "s"], vec![], vec![scales(&[1.0, 1e30])]),
        resize("Resize to nothing", &["x", "", "s"], vec![], vec![scales(&[1.0, 0.1])]),
        resize("Resize with scales for another rank", &["x", "", "s"], vec![], vec![scales(&[1.0, 2.0, 3.0])]),
        resize("Resize to a huge size", &["x", "", "", "z"], vec![], vec![i64_tensor("z", &[2, 1 << 40])]),
        resize("Resize to a huge tensor", &["x", "", "", "z"], vec![], vec![i64_tensor("z", &[1 << 20, 1 << 20])]),
        resize("Resize to a negative size", &["x", "", "", "z"], vec![], vec![i64_tensor("z", &[2, -3])]),
        resize(
            "Resize tf_crop_and_resize without roi",
            &["x", "", "s"],
            vec![attr_s("coordinate_transformation_mode", "tf_crop_and_resize")],
            vec![scales(&[1.0, 2.0])],
        ),
        resize(
            "Resize with a roi for another rank",
            &["x", "roi", "s"],
            vec![attr_s("coordinate_transformation_mode", "tf_crop_and_resize")],
            vec![f32_tensor("roi", &[2], &[0.0, 1.0]), scales(&[1.0, 2.0])],
        ),
        resize(
            "Resize with a NaN roi",
            &["x", "roi", "s"],
            vec![attr_s("coordinate_transformation_mode", "tf_crop_and_resize")],
            vec![f32_tensor("roi", &[4], &[0.0, f32::NAN, 1.0, 1.0]), scales(&[1.0, 2.0])],
        ),
        resize(
            "Resize with an unknown mode",
            &["x", "", "s"],
            vec![attr_s("mode", "bicubic")],
            vec![scales(&[1.0, 2.0])],
        ),
        resize(
            "Resize with an unknown coordinate transformation",
            &["x", "", "s"],
            vec![attr_s("coordinate_transformation_mode", "tf_half_pixel_for_nn")],
            vec![scales(&[1.0, 2.0])],
        ),
        (
            "Resize linear of integers",
            vec![
                node("Cast", &["x"], "i", vec![attr_i("to", 7)]),
                node("Resize", &["i", "", "s"], "y", vec![attr_s("mode", "linear")]),
            ],
            vec![scales(&[1.0, 1.5])],
        ),
        resize(
            "Resize with an unknown nearest mode",
            &["x", "", "s"],
            vec![attr_s("nearest_mode", "round")],
            vec![scales(&[1.0, 2.0])],
        ),
    ]);
    for (what, nodes, inits) in cases {
        let m = OnnxModel::from_bytes(model(13, &[4], nodes, inits), what).unwrap();
        match import(&m, 2) {
            Err(e) => assert!(!e.to_string().contains("internal"), "{what}: {e}"),
            Ok(_) => panic!("{what}: imported"),
        }
    }
}

#[test]
fn malformed_losses_windows_and_crops_are_errors_not_panics() {
    // x is [2, 3, 5].
    let t = |dims: &[usize], v: i64| i64_nd("t", dims, &vec![v; dims.iter().product()]);
    let lp = |attrs: Vec<pb::AttributeProto>| vec![node("LpPool", &["x"], "y", attrs)];
    let cases: Vec<(&str, i64, Vec<pb::NodeProto>, Vec<pb::TensorProto>)> = vec![
        (
            "NLL with a target of another shape",
            13,
            vec![node("NegativeLogLikelihoodLoss", &["x", "t"], "y", vec![])],
            vec![t(&[2, 4], 0)],
        ),
        (
            "NLL with a float target",
            13,
            vec![node("NegativeLogLikelihoodLoss", &["x", "t"], "y", vec![])],
            vec![f32_tensor("t", &[2, 5], &[0.0; 10])],
        ),
        (
            "NLL with a weight of another length",
            13,
            vec![node("NegativeLogLikelihoodLoss", &["x", "t", "w"], "y", vec![])],
            vec![t(&[2, 5], 0), f32_tensor("w", &[4], &[1.0; 4])],
        ),
        (
            "SoftmaxCrossEntropyLoss with an unknown reduction",
            13,
            vec![node("SoftmaxCrossEntropyLoss", &["x", "t"], "y", vec![attr_s("reduction", "avg")])],
            vec![t(&[2, 5], 1)],
        ),
        ("LpPool with p 0", 18, lp(vec![attr_ints("kernel_shape", &[2]), attr_i("p", 0)]), vec![]),
        ("LpPool with a kernel past the input", 18, lp(vec![attr_ints("kernel_shape", &[9])]), vec![]),
        (
            "LpPool with overflowing pads",
            18,
            lp(vec![attr_ints("kernel_shape", &[2]), attr_ints("pads", &[i64::MAX, i64::MAX]), attr_i("ceil_mode", 1)]),
            vec![],
        ),
        ("LRN with size 0", 13, vec![node("LRN", &["x"], "y", vec![attr_i("size", 0)])], vec![]),
        ("LRN without size", 13, vec![node("LRN", &["x"], "y", vec![])], vec![]),
        (
            "MeanVarianceNormalization past the rank",
            13,
            vec![node("MeanVarianceNormalization", &["x"], "y", vec![attr_ints("axes", &[0, 2, 3])])],
            vec![],
        ),
        (
            "CenterCropPad with fewer lengths than axes",
            18,
            vec![node("CenterCropPad", &["x", "s"], "y", vec![])],
            vec![i64_tensor("s", &[2, 3])],
        ),
        (
            "CenterCropPad to a negative length",
            18,
            vec![node("CenterCropPad", &["x", "s"], "y", vec![attr_ints("axes", &[1])])],
            vec![i64_tensor("s", &[-4])],
        ),
        (
            "CenterCropPad to a huge length",
            18,
            vec![node("CenterCropPad", &["x", "s"], "y", vec![attr_ints("axes", &[1, 2])])],
            vec![i64_tensor("s", &[1 << 40, 1 << 40])],
        ),
        (
            "CenterCropPad with a repeated axis",
            18,
            vec![node("CenterCropPad", &["x", "s"], "y", vec![attr_ints("axes", &[1, -2])])],
            vec![i64_tensor("s", &[2, 2])],
        ),
        (
            "SwiGLU of two shapes",
            28,
            vec![node("SwiGLU", &["x", "b"], "y", vec![])],
            vec![f32_tensor("b", &[3, 5], &[1.0; 15])],
        ),
    ];
    for (what, opset, nodes, inits) in cases {
        let m = OnnxModel::from_bytes(model(opset, &[3, 5], nodes, inits), what).unwrap();
        match import(&m, 2) {
            Err(e) => assert!(!e.to_string().contains("internal"), "{what}: {e}"),
            Ok(_) => panic!("{what}: imported"),
        }
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
fn run_time_forms_that_remain_refused() {
    // An empty slice of run-time data: a clear error (the engine has no empty tensors).
    let nodes = vec![node("Slice", &["x", "s", "e", "a", "st"], "y", vec![])];
    let inits = vec![i64_tensor("s", &[4]), i64_tensor("e", &[2]), i64_tensor("a", &[1]), i64_tensor("st", &[1])];
    let m = OnnxModel::from_bytes(model(13, &[6], nodes, inits), "empty").unwrap();
    let e = import(&m, 1).unwrap_err().to_string();
    assert!(e.contains("is empty (the engine has no empty tensors)"), "{e}");
    // Slice bounds computed at run time: refused by the coverage check.
    let nodes = vec![node("Slice", &["x", "b0", "x"], "y", vec![])];
    let cov = coverage_error(model(13, &[4], nodes, vec![i64_tensor("b0", &[0])]));
    assert!(cov.nodes.len() == 1 && cov.nodes[0].reason.contains("input 2 (ends) must be known"), "{cov}");
}

/// ONNX defines a reverse recurrent layer as the forward one on the time-reversed input, its Y
/// reversed back, and a bidirectional one as both stacked (onnx.reference's LSTM, GRU and RNN do
/// exactly that). tract's reverse form departs from that definition, so our reverse and
/// bidirectional layers run against tract's forward layers between reversing Slices.
#[test]
fn reverse_and_bidirectional_recurrent_layers() {
    let (h, i) = (4usize, 3usize);
    for (op, gates) in [("LSTM", 4), ("GRU", 3), ("RNN", 1)] {
        let w = weights(2 * gates * h * i, 70);
        let r = weights(2 * gates * h * h, 71);
        let b = weights(2 * 2 * gates * h, 72);
        let (wn, rn, bn) = (gates * h * i, gates * h * h, 2 * gates * h);
        let flip =
            [i64_tensor("s", &[-1]), i64_tensor("e", &[i64::MIN]), i64_tensor("a", &[0]), i64_tensor("st", &[-1])];
        // Direction k's weights on their own, for tract's forward layers.
        let one_dir = |k: usize| {
            vec![
                f32_tensor(&format!("W{k}"), &[1, gates * h, i], &w[k * wn..(k + 1) * wn]),
                f32_tensor(&format!("R{k}"), &[1, gates * h, h], &r[k * rn..(k + 1) * rn]),
                f32_tensor(&format!("B{k}"), &[1, 2 * gates * h], &b[k * bn..(k + 1) * bn]),
            ]
        };
        let layer = |direction: &str, x: &str, k: &str, y: &str| {
            let ins = [x.to_string(), format!("W{k}"), format!("R{k}"), format!("B{k}")];
            let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
            node(op, &ins, y, vec![attr_i("hidden_size", h as i64), attr_s("direction", direction)])
        };
        let flatten = |y: &str| node("ReduceSum", &[y], "y", vec![attr_ints("axes", &[0]), attr_i("keepdims", 0)]);
        // Reverse: ours on x against tract's forward layer on reversed x, its Y reversed back.
        let mut inits = one_dir(1);
        inits.extend(flip.clone());
        let ours = model(13, &[2, i], vec![layer("reverse", "x", "1", "yr"), flatten("yr")], inits.clone());
        let theirs = model(
            13,
            &[2, i],
            vec![
                node("Slice", &["x", "s", "e", "a", "st"], "xf", vec![]),
                layer("forward", "xf", "1", "yf"),
                node("Slice", &["yf", "s", "e", "a", "st"], "yr", vec![]),
                flatten("yr"),
            ],
            inits,
        );
        let e = compare_with(op, &ours, &theirs, 5, &[2, i]).unwrap_or_else(|e| panic!("{op} reverse: {e}"));
        assert!(e <= TOLERANCE, "{op} reverse: error {e:e}");
        // Bidirectional: ours against both directions computed apart and stacked on axis 1.
        let mut both = vec![
            f32_tensor("W", &[2, gates * h, i], &w),
            f32_tensor("R", &[2, gates * h, h], &r),
            f32_tensor("B", &[2, 2 * gates * h], &b),
        ];
        both.extend(flip.clone());
        let mut bi = node(
            op,
            &["x", "W", "R", "B"],
            "yb",
            vec![attr_i("hidden_size", h as i64), attr_s("direction", "bidirectional")],
        );
        bi.output.push(String::new());
        let ours = model(13, &[2, i], vec![bi, flatten("yb")], both);
        let mut inits = one_dir(0);
        inits.extend(one_dir(1));
        inits.extend(flip);
        let theirs = model(
            13,
            &[2, i],
            vec![
                layer("forward", "x", "0", "y0"),
                node("Slice", &["x", "s", "e", "a", "st"], "xf", vec![]),
                layer("forward", "xf", "1", "yf"),
                node("Slice", &["yf", "s", "e", "a", "st"], "y1", vec![]),
                node("Concat", &["y0", "y1"], "yb", vec![attr_i("axis", 1)]),
                flatten("yb"),
            ],
            inits,
        );
        let e = compare_with(op, &ours, &theirs, 5, &[2, i]).unwrap_or_else(|e| panic!("{op} bidirectional: {e}"));
        assert!(e <= TOLERANCE, "{op} bidirectional: error {e:e}");
    }
}

/// `sequence_lens`: each row of a forward or reverse layer against the same layer (tract's
/// forward layer, time-reversed around it for reverse) run on that row's own steps alone, its Y
/// padded with zeros to the full length; Y and Y_h both compared.
#[test]
fn recurrent_layers_with_sequence_lens() {
    let (h, i, t_len) = (4usize, 3usize, 5usize);
    let lens = [5i64, 2, 4];
    let n = lens.len();
    for (op, gates) in [("LSTM", 4), ("GRU", 3), ("RNN", 1)] {
        for direction in ["forward", "reverse"] {
            let what = format!("{op} {direction} with sequence_lens {lens:?}");
            let mut inits = vec![
                f32_tensor("W", &[1, gates * h, i], &weights(gates * h * i, 80)),
                f32_tensor("R", &[1, gates * h, h], &weights(gates * h * h, 81)),
                f32_tensor("B", &[1, 2 * gates * h], &weights(2 * gates * h, 82)),
                pb::TensorProto {
                    name: "L".into(),
                    dims: vec![n as i64],
                    data_type: 6,
                    int32_data: lens.iter().map(|&l| l as i32).collect(),
                    ..Default::default()
                },
                i64_tensor("flat", &[-1]),
                i64_tensor("s", &[-1]),
                i64_tensor("e", &[i64::MIN]),
                i64_tensor("a", &[0]),
                i64_tensor("st", &[-1]),
            ];
            let attrs = || vec![attr_i("hidden_size", h as i64), attr_s("direction", direction)];
            let both = |y: &str, yh: &str| {
                vec![
                    node("Reshape", &[y, "flat"], "y_flat", vec![]),
                    node("Reshape", &[yh, "flat"], "yh_flat", vec![]),
                    node("Concat", &["y_flat", "yh_flat"], "y", vec![attr_i("axis", 0)]),
                ]
            };
            let mut layer = node(op, &["x", "W", "R", "B", "L"], "Y", attrs());
            layer.output.push("Yh".into());
            let mut nodes = vec![layer];
            nodes.extend(both("Y", "Yh"));
            let ours = model(13, &[n, i], nodes, inits.clone());
            // Theirs: one forward layer per row on its own steps.
            let mut nodes = Vec::new();
            let (mut ys, mut yhs) = (Vec::new(), Vec::new());
            for (b, &l) in lens.iter().enumerate() {
                inits.push(i64_tensor(&format!("starts{b}"), &[0, b as i64]));
                inits.push(i64_tensor(&format!("ends{b}"), &[l, b as i64 + 1]));
                inits.push(i64_tensor(&format!("axes{b}"), &[0, 1]));
                inits.push(i64_tensor(&format!("pads{b}"), &[0, 0, 0, 0, t_len as i64 - l, 0, 0, 0]));
                let (xb, yb, yhb, yp) = (format!("x{b}"), format!("y{b}"), format!("yh{b}"), format!("yp{b}"));
                let (starts, ends, axes) = (format!("starts{b}"), format!("ends{b}"), format!("axes{b}"));
                nodes.push(node("Slice", &["x", &starts, &ends, &axes], &xb, vec![]));
                let reverse = direction == "reverse";
                let input = if reverse {
                    nodes.push(node("Slice", &[&xb, "s", "e", "a", "st"], &format!("{xb}r"), vec![]));
                    format!("{xb}r")
                } else {
                    xb.clone()
                };
                let raw = if reverse { format!("{yb}r") } else { yb.clone() };
                let mut fwd = node(
                    op,
                    &[&input, "W", "R", "B"],
                    &raw,
                    vec![attr_i("hidden_size", h as i64), attr_s("direction", "forward")],
                );
                fwd.name = format!("{op}_row{b}");
                fwd.output.push(yhb.clone());
                nodes.push(fwd);
                if reverse {
                    nodes.push(node("Slice", &[&raw, "s", "e", "a", "st"], &yb, vec![]));
                }
                nodes.push(node("Pad", &[&yb, &format!("pads{b}")], &yp, vec![]));
                ys.push(yp);
                yhs.push(yhb);
            }
            let ys: Vec<&str> = ys.iter().map(String::as_str).collect();
            let yhs: Vec<&str> = yhs.iter().map(String::as_str).collect();
            nodes.push(node("Concat", &ys, "Y", vec![attr_i("axis", 2)]));
            nodes.push(node("Concat", &yhs, "Yh", vec![attr_i("axis", 1)]));
            nodes.extend(both("Y", "Yh"));
            let theirs = model(13, &[n, i], nodes, inits);
            let e = compare_with(&what, &ours, &theirs, t_len, &[n, i]).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(e <= TOLERANCE, "{what}: error {e:e}");
        }
    }
}

/// Ops checked against their definition in primitive ops, which tract runs, because tract's own
/// form of the op departs from ONNX's definition (ONNX's reference and test cases agree with ours):
/// Celu `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`; Swish `x * sigmoid(alpha * x)` (tract
/// ignores alpha); Resize's pytorch_half_pixel where a scale gives one output row; Upsample, which
/// tract lacks, against the Resize it is. Each is (case, the definition's model).
fn definition_cases() -> Vec<(Case, Vec<u8>)> {
    let mut out = Vec::new();
    let ours = model(12, &[3, 4], vec![node("Celu", &["x"], "y", vec![attr_f("alpha", 0.7)])], vec![]);
    let nodes = vec![
        node("Div", &["x", "alpha"], "xa", vec![]),
        node("Exp", &["xa"], "e", vec![]),
        node("Sub", &["e", "one"], "em", vec![]),
        node("Mul", &["em", "alpha"], "neg", vec![]),
        node("Min", &["neg", "zero"], "lo", vec![]),
        node("Max", &["x", "zero"], "hi", vec![]),
        node("Add", &["hi", "lo"], "y", vec![]),
    ];
    let inits = vec![f32_tensor("alpha", &[], &[0.7]), f32_tensor("one", &[], &[1.0]), f32_tensor("zero", &[], &[0.0])];
    out.push((case("Celu", ours, 2, &[3, 4]), model(12, &[3, 4], nodes, inits)));
    let ours = model(24, &[3, 4], vec![node("Swish", &["x"], "y", vec![attr_f("alpha", 0.7)])], vec![]);
    let nodes = vec![
        node("Mul", &["x", "alpha"], "ax", vec![]),
        node("Sigmoid", &["ax"], "s", vec![]),
        node("Mul", &["x", "s"], "y", vec![]),
    ];
    out.push((case("Swish", ours, 2, &[3, 4]), model(13, &[3, 4], nodes, vec![f32_tensor("alpha", &[], &[0.7])])));
    // ConvTranspose with output_shape: ONNX derives the pads from it (here 16 - 15 = 1: one at the
    // start), which tract does not; against the explicit pads.
    let inits = || vec![f32_tensor("w", &[3, 2, 4], &weights(24, 92)), f32_tensor("b", &[2], &[0.5, -0.5])];
    let conv = |attrs| model(13, &[3, 5], vec![node("ConvTranspose", &["x", "w", "b"], "y", attrs)], inits());
    let ours = conv(vec![attr_ints("strides", &[3]), attr_ints("output_shape", &[15])]);
    let theirs = conv(vec![attr_ints("strides", &[3]), attr_ints("pads", &[1, 0])]);
    out.push((case("ConvTranspose output_shape", ours, 2, &[3, 5]), theirs));
    // Edge, reflect and wrap padding (tract's edge padding disagrees with numpy's, which ONNX's
    // reference uses), negative pads cropping: against a Gather at the positions numpy's `pad`
    // reads, written out here: axis 1 of [N, 3, 6] padded by (2, 1), axis 2 cropped by (1, 2).
    for (mode, rows) in [("edge", [0, 0, 0, 1, 2, 2]), ("reflect", [2, 1, 0, 1, 2, 1]), ("wrap", [1, 2, 0, 1, 2, 0])] {
        let inits = vec![i64_tensor("pads", &[0, 2, -1, 0, 1, -2])];
        let ours = model(19, &[3, 6], vec![node("Pad", &["x", "pads"], "y", vec![attr_s("mode", mode)])], inits);
        let nodes = vec![
            node("Gather", &["x", "rows"], "g", vec![attr_i("axis", 1)]),
            node("Slice", &["g", "st", "en", "ax"], "y", vec![]),
        ];
        let inits =
            vec![i64_tensor("rows", &rows), i64_tensor("st", &[1]), i64_tensor("en", &[4]), i64_tensor("ax", &[2])];
        out.push((case(format!("Pad {mode}"), ours, 2, &[3, 6]), model(13, &[3, 6], nodes, inits)));
    }
    // Attention (tract has no Attention op): self-attention over [N, 4, 6] in 2 heads, causal; and
    // grouped-query attention (2 query heads over 1 key/value head) of projections with a softcap.
    // The definitions mask with -1e9, which gives the same softmax as ONNX's -inf.
    let causal: Vec<f32> = (0..16).map(|k| if k % 4 <= k / 4 { 0.0 } else { -1e9 }).collect();
    let attrs = vec![attr_i("q_num_heads", 2), attr_i("kv_num_heads", 2), attr_i("is_causal", 1)];
    let ours = model(23, &[4, 6], vec![node("Attention", &["x", "x", "x"], "y", attrs)], vec![]);
    let nodes = vec![
        node("Reshape", &["x", "split"], "h", vec![]),
        node("Transpose", &["h"], "qh", vec![attr_ints("perm", &[0, 2, 1, 3])]),
        node("Transpose", &["h"], "kt", vec![attr_ints("perm", &[0, 2, 3, 1])]),
        node("MatMul", &["qh", "kt"], "s", vec![]),
        node("Mul", &["s", "scale"], "ss", vec![]),
        node("Add", &["ss", "causal"], "sm", vec![]),
        node("Softmax", &["sm"], "p", vec![attr_i("axis", -1)]),
        node("MatMul", &["p", "qh"], "o", vec![]),
        node("Transpose", &["o"], "ot", vec![attr_ints("perm", &[0, 2, 1, 3])]),
        node("Reshape", &["ot", "merge"], "y", vec![]),
    ];
    let inits = vec![
        i64_tensor("split", &[0, 4, 2, 3]),
        i64_tensor("merge", &[0, 4, 6]),
        f32_tensor("scale", &[], &[1.0 / 3f32.sqrt()]),
        f32_tensor("causal", &[4, 4], &causal),
    ];
    out.push((case("Attention causal, 2 heads", ours, 2, &[4, 6]), model(13, &[4, 6], nodes, inits)));
    let projections = || {
        vec![
            f32_tensor("wq", &[6, 6], &weights(36, 93)),
            f32_tensor("wk", &[6, 3], &weights(18, 94)),
            f32_tensor("wv", &[6, 3], &weights(18, 95)),
        ]
    };
    let project = || {
        vec![
            node("MatMul", &["x", "wq"], "q", vec![]),
            node("MatMul", &["x", "wk"], "k", vec![]),
            node("MatMul", &["x", "wv"], "v", vec![]),
        ]
    };
    let mut nodes = project();
    let attrs = vec![attr_i("q_num_heads", 2), attr_i("kv_num_heads", 1), attr_f("softcap", 2.0)];
    nodes.push(node("Attention", &["q", "k", "v"], "y", attrs));
    let ours = model(23, &[4, 6], nodes, projections());
    let mut nodes = project();
    nodes.extend([
        node("Reshape", &["q", "split_q"], "qs", vec![]),
        node("Transpose", &["qs"], "qh", vec![attr_ints("perm", &[0, 2, 1, 3])]),
        node("Reshape", &["k", "split_kv"], "ks", vec![]),
        node("Transpose", &["ks"], "kt", vec![attr_ints("perm", &[0, 2, 3, 1])]),
        node("Reshape", &["v", "split_kv"], "vs", vec![]),
        node("Transpose", &["vs"], "vh", vec![attr_ints("perm", &[0, 2, 1, 3])]),
        node("MatMul", &["qh", "kt"], "s", vec![]),
        node("Mul", &["s", "scale"], "ss", vec![]),
        node("Div", &["ss", "cap"], "sd", vec![]),
        node("Tanh", &["sd"], "st", vec![]),
        node("Mul", &["st", "cap"], "sc", vec![]),
        node("Softmax", &["sc"], "p", vec![attr_i("axis", -1)]),
        node("MatMul", &["p", "vh"], "o", vec![]),
        node("Transpose", &["o"], "ot", vec![attr_ints("perm", &[0, 2, 1, 3])]),
        node("Reshape", &["ot", "merge"], "y", vec![]),
    ]);
    let mut inits = projections();
    inits.extend([
        i64_tensor("split_q", &[0, 4, 2, 3]),
        i64_tensor("split_kv", &[0, 4, 1, 3]),
        i64_tensor("merge", &[0, 4, 6]),
        f32_tensor("scale", &[], &[1.0 / 3f32.sqrt()]),
        f32_tensor("cap", &[], &[2.0]),
    ]);
    out.push((case("Attention grouped-query, softcap", ours, 2, &[4, 6]), model(13, &[4, 6], nodes, inits)));
    // RotaryEmbedding (tract has none). 3-D input in 2 heads of 4 features, the first 2 rotated,
    // angles gathered at position ids.
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..5).map(|p| ((p as f32 * 0.7).cos(), (p as f32 * 0.7).sin())).unzip();
    let caches = |half: usize| {
        let rep = |v: &[f32]| v.iter().flat_map(|&a| std::iter::repeat_n(a, half)).collect::<Vec<f32>>();
        vec![
            f32_tensor("cos", &[5, half], &rep(&cos)),
            f32_tensor("sin", &[5, half], &rep(&sin)),
            i64_tensor_dims("ids", &[2, 3], &[0, 1, 2, 4, 3, 1]),
        ]
    };
    let attrs = vec![attr_i("num_heads", 2), attr_i("rotary_embedding_dim", 2)];
    let ours = model(23, &[3, 8], vec![node("RotaryEmbedding", &["x", "cos", "sin", "ids"], "y", attrs)], caches(1));
    let slice = |x: &str, from: &str, to: &str, out: &str| node("Slice", &[x, from, to, "ax3"], out, vec![]);
    let rotate = || {
        vec![
            node("Gather", &["cos", "ids"], "cg", vec![]),
            node("Gather", &["sin", "ids"], "sg", vec![]),
            node("Unsqueeze", &["cg", "ax2"], "c", vec![]),
            node("Unsqueeze", &["sg", "ax2"], "s", vec![]),
            node("Mul", &["c", "x1"], "c1", vec![]),
            node("Mul", &["s", "x2"], "s2", vec![]),
            node("Mul", &["s", "x1"], "s1", vec![]),
            node("Mul", &["c", "x2"], "c2", vec![]),
            node("Sub", &["c1", "s2"], "re", vec![]),
            node("Add", &["s1", "c2"], "im", vec![]),
        ]
    };
    let mut nodes = vec![
        node("Reshape", &["x", "split"], "xh", vec![]),
        slice("xh", "i0", "i1", "x1"),
        slice("xh", "i1", "i2", "x2"),
        slice("xh", "i2", "i4", "rest"),
    ];
    nodes.extend(rotate());
    nodes.push(node("Concat", &["re", "im", "rest"], "yh", vec![attr_i("axis", 3)]));
    nodes.push(node("Reshape", &["yh", "merge"], "y", vec![]));
    let mut inits = caches(1);
    inits.extend([
        i64_tensor("split", &[0, 3, 2, 4]),
        i64_tensor("merge", &[0, 3, 8]),
        i64_tensor("ax2", &[2]),
        i64_tensor("ax3", &[3]),
        i64_tensor("i0", &[0]),
        i64_tensor("i1", &[1]),
        i64_tensor("i2", &[2]),
        i64_tensor("i4", &[4]),
    ]);
    out.push((case("RotaryEmbedding 3-D, partial", ours, 2, &[3, 8]), model(13, &[3, 8], nodes, inits)));
    // 4-D input [N, 2 heads, 3 positions, 4 features], interleaved pairs.
    let ours = model(
        23,
        &[2, 3, 4],
        vec![node("RotaryEmbedding", &["x", "cos", "sin", "ids"], "y", vec![attr_i("interleaved", 1)])],
        caches(2),
    );
    let mut nodes = vec![
        node("Transpose", &["x"], "xt", vec![attr_ints("perm", &[0, 2, 1, 3])]),
        node("Slice", &["xt", "i0", "i4", "ax3", "two"], "x1", vec![]),
        node("Slice", &["xt", "i1", "i4", "ax3", "two"], "x2", vec![]),
    ];
    nodes.extend(rotate());
    nodes.extend([
        node("Unsqueeze", &["re", "ax4"], "reu", vec![]),
        node("Unsqueeze", &["im", "ax4"], "imu", vec![]),
        node("Concat", &["reu", "imu"], "pairs", vec![attr_i("axis", 4)]),
        node("Reshape", &["pairs", "merge"], "yt", vec![]),
        node("Transpose", &["yt"], "y", vec![attr_ints("perm", &[0, 2, 1, 3])]),
    ]);
    let mut inits = caches(2);
    inits.extend([
        i64_tensor("merge", &[0, 3, 2, 4]),
        i64_tensor("ax2", &[2]),
        i64_tensor("ax3", &[3]),
        i64_tensor("ax4", &[4]),
        i64_tensor("i0", &[0]),
        i64_tensor("i1", &[1]),
        i64_tensor("i4", &[4]),
        i64_tensor("two", &[2]),
    ]);
    out.push((case("RotaryEmbedding 4-D, interleaved", ours, 2, &[2, 3, 4]), model(13, &[2, 3, 4], nodes, inits)));
    // Loop (tract has none), unrolled at import, against the iterations written out: three steps
    // of h = tanh(h W + 0.1 i) from h = x, with the steps stacked as a scan output; once with a trip
    // count, once as a while loop whose condition (i + 1 < 3) folds.
    let w = || f32_tensor("w", &[3, 3], &weights(9, 96));
    let step = |i: &str, h: &str, out: &str| {
        vec![
            node("Cast", &[i], &format!("{out}_if"), vec![attr_i("to", 1)]),
            node("Mul", &[&format!("{out}_if"), "tenth"], &format!("{out}_b"), vec![]),
            node("MatMul", &[h, "w"], &format!("{out}_m"), vec![]),
            node("Add", &[&format!("{out}_m"), &format!("{out}_b")], &format!("{out}_a"), vec![]),
            node("Tanh", &[&format!("{out}_a")], out, vec![]),
        ]
    };
    let h: &[Option<usize>] = &[None, Some(3)];
    for with_cond in [false, true] {
        let mut body_nodes = step("i", "h", "h2");
        body_nodes.push(node("Identity", &["h2"], "scan", vec![]));
        if with_cond {
            body_nodes.push(node("Add", &["i", "one_i"], "next", vec![]));
            body_nodes.push(node("Less", &["next", "three"], "cond_out", vec![]));
        } else {
            body_nodes.push(node("Identity", &["c"], "cond_out", vec![]));
        }
        let mut body =
            subgraph(&[("i", &[]), ("c", &[]), ("h", h)], &[("cond_out", &[]), ("h2", h), ("scan", h)], body_nodes);
        body.input[0].r#type = None;
        body.input[1].r#type = None;
        body.output[0].r#type = None;
        let inputs: &[&str] = if with_cond { &["", "yes", "x"] } else { &["m", "", "x"] };
        let mut loop_node = node("Loop", inputs, "last", vec![attr_g("body", body)]);
        loop_node.output = vec!["last".into(), "stacked".into()];
        let nodes = vec![loop_node, node("Add", &["stacked", "last"], "y", vec![])];
        let mut yes = f32_tensor("yes", &[], &[]);
        yes.data_type = 9;
        yes.raw_data = vec![1];
        let inits = vec![
            w(),
            f32_tensor("tenth", &[], &[0.1]),
            i64_scalar("m", 3),
            i64_scalar("one_i", 1),
            i64_scalar("three", 3),
            yes,
        ];
        let ours = model(13, &[3], nodes, inits);
        let mut nodes = Vec::new();
        let mut prev = "x".to_string();
        for k in 0..3 {
            nodes.extend(step(&format!("k{k}"), &prev, &format!("h{k}")));
            nodes.push(node("Unsqueeze", &[&format!("h{k}"), "ax0"], &format!("u{k}"), vec![]));
            prev = format!("h{k}");
        }
        nodes.push(node("Concat", &["u0", "u1", "u2"], "stacked", vec![attr_i("axis", 0)]));
        nodes.push(node("Add", &["stacked", "h2"], "y", vec![]));
        let inits = vec![
            w(),
            f32_tensor("tenth", &[], &[0.1]),
            i64_scalar("k0", 0),
            i64_scalar("k1", 1),
            i64_scalar("k2", 2),
            i64_tensor("ax0", &[0]),
        ];
        let name = if with_cond { "Loop with a condition" } else { "Loop with a trip count" };
        out.push((case(name, ours, 2, &[3]), model(13, &[3], nodes, inits)));
    }
    // If with a known condition, against the branch it picks (the branch reads x from the outer
    // scope).
    for (flag, want) in [(1u8, "Mul"), (0, "Sub")] {
        let then_b = subgraph(&[], &[("t", &[None, Some(4)])], vec![node("Mul", &["x", "two"], "t", vec![])]);
        let else_b = subgraph(&[], &[("e", &[None, Some(4)])], vec![node("Sub", &["x", "two"], "e", vec![])]);
        let mut c = f32_tensor("c", &[], &[]);
        c.data_type = 9;
        c.raw_data = vec![flag];
        let nodes = vec![node("If", &["c"], "y", vec![attr_g("then_branch", then_b), attr_g("else_branch", else_b)])];
        let ours = model(13, &[4], nodes, vec![c, f32_tensor("two", &[], &[2.0])]);
        let theirs =
            model(13, &[4], vec![node(want, &["x", "two"], "y", vec![])], vec![f32_tensor("two", &[], &[2.0])]);
        out.push((case(format!("If {flag}"), ours, 2, &[4]), theirs));
    }
    out.extend(loss_cases());
    // LpPool, which tract lacks: the window sum of |x|^p as a depthwise convolution with a kernel
    // of ones (explicit pads for auto_pad and for ceil_mode's last window), then the p-th root.
    // (p, x dims, LpPool's window attributes, the convolution's)
    type LpForm = (i64, Vec<usize>, Vec<pb::AttributeProto>, Vec<pb::AttributeProto>);
    let lp_forms: [LpForm; 3] = [
        (
            3,
            vec![3, 5, 6],
            vec![
                attr_ints("kernel_shape", &[2, 3]),
                attr_ints("strides", &[2, 1]),
                attr_ints("pads", &[1, 0, 0, 2]),
                attr_ints("dilations", &[1, 2]),
            ],
            vec![attr_ints("strides", &[2, 1]), attr_ints("pads", &[1, 0, 0, 2]), attr_ints("dilations", &[1, 2])],
        ),
        (
            2,
            vec![3, 7],
            vec![attr_ints("kernel_shape", &[3]), attr_ints("strides", &[2]), attr_s("auto_pad", "SAME_UPPER")],
            vec![attr_ints("strides", &[2]), attr_ints("pads", &[1, 1])],
        ),
        (
            1,
            vec![3, 7],
            vec![attr_ints("kernel_shape", &[2]), attr_ints("strides", &[2]), attr_i("ceil_mode", 1)],
            vec![attr_ints("strides", &[2]), attr_ints("pads", &[0, 1])],
        ),
    ];
    for (p, dims, ours_attrs, conv_attrs) in lp_forms {
        let mut attrs = ours_attrs.clone();
        attrs.push(attr_i("p", p));
        let ours = model(18, &dims, vec![node("LpPool", &["x"], "y", attrs)], vec![]);
        let kernel = ours_attrs.iter().find(|a| a.name == "kernel_shape").map(|a| a.ints.clone()).unwrap_or_default();
        let taps: i64 = kernel.iter().product();
        let mut wdims = vec![dims[0], 1];
        wdims.extend(kernel.iter().map(|&k| k as usize));
        let mut conv_attrs = conv_attrs;
        conv_attrs.push(attr_i("group", dims[0] as i64));
        let nodes = vec![
            node("Abs", &["x"], "a", vec![]),
            node("Pow", &["a", "p"], "ap", vec![]),
            node("Conv", &["ap", "w"], "s", conv_attrs),
            node("Pow", &["s", "inv_p"], "y", vec![]),
        ];
        let inits = vec![
            f32_tensor("p", &[], &[p as f32]),
            f32_tensor("inv_p", &[], &[1.0 / p as f32]),
            f32_tensor("w", &wdims, &vec![1.0; dims[0] * taps as usize]),
        ];
        let name = format!("LpPool p {p} {dims:?}");
        out.push((case(name, ours, 2, &dims), model(13, &dims, nodes, inits)));
    }
    // CenterCropPad, which tract lacks: against Slice and Pad.
    let ours = model(
        18,
        &[5, 4],
        vec![node("CenterCropPad", &["x", "shape"], "y", vec![attr_ints("axes", &[1, 2])])],
        vec![i64_tensor("shape", &[3, 7])],
    );
    let nodes = vec![node("Slice", &["x", "st", "en", "ax"], "c", vec![]), node("Pad", &["c", "pads"], "y", vec![])];
    let inits = vec![
        i64_tensor("st", &[1]),
        i64_tensor("en", &[4]),
        i64_tensor("ax", &[1]),
        i64_tensor("pads", &[0, 0, 1, 0, 0, 2]),
    ];
    out.push((case("CenterCropPad crop and pad", ours, 2, &[5, 4]), model(13, &[5, 4], nodes, inits)));
    let ours = model(
        18,
        &[3, 6],
        vec![node("CenterCropPad", &["x", "shape"], "y", vec![])],
        vec![i64_tensor("shape", &[2, 4, 3])],
    );
    let nodes = vec![node("Slice", &["x", "st", "en", "ax"], "c", vec![]), node("Pad", &["c", "pads"], "y", vec![])];
    let inits = vec![
        i64_tensor("st", &[1]),
        i64_tensor("en", &[4]),
        i64_tensor("ax", &[2]),
        i64_tensor("pads", &[0, 0, 0, 0, 1, 0]),
    ];
    out.push((case("CenterCropPad every axis", ours, 2, &[3, 6]), model(13, &[3, 6], nodes, inits)));
    // SwiGLU (opset 28), which tract lacks: a * sigmoid(alpha a) * b.
    let b = || f32_tensor("b", &[2, 3, 4], &weights(24, 93));
    let ours = model(28, &[3, 4], vec![node("SwiGLU", &["x", "b"], "y", vec![attr_f("alpha", 1.5)])], vec![b()]);
    let nodes = vec![
        node("Mul", &["x", "alpha"], "ax", vec![]),
        node("Sigmoid", &["ax"], "s", vec![]),
        node("Mul", &["x", "s"], "sw", vec![]),
        node("Mul", &["sw", "b"], "y", vec![]),
    ];
    let inits = vec![f32_tensor("alpha", &[], &[1.5]), b()];
    out.push((case("SwiGLU", ours, 2, &[3, 4]), model(13, &[3, 4], nodes, inits)));
    // Resize, pytorch_half_pixel where a scale gives one output row: onnx's reference uses the
    // half_pixel coordinate unless the fractional length `scale * in` is exactly 1 (here 0.34 * 3 =
    // 1.02), tract the spec's `0` whenever the integer length is 1: against half_pixel.
    let resize = |coord: &str| {
        let attrs = vec![attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", coord)];
        let nodes = vec![node("Resize", &["x", "", "s"], "y", attrs)];
        model(13, &[3, 4], nodes, vec![f32_tensor("s", &[3], &[1.0, 0.34, 1.5])])
    };
    out.push((
        case("Resize pytorch_half_pixel to 1 from a scale", resize("pytorch_half_pixel"), 2, &[3, 4]),
        resize("half_pixel"),
    ));
    // Upsample (tract has none): Resize's asymmetric coordinates, nearest rounding down.
    for (mode, opset) in [("nearest", 7), ("nearest", 9), ("linear", 9)] {
        let scales = [1.0, 1.0, 3.0, 1.5];
        let (ins, attrs, inits) = if opset < 9 {
            (
                vec!["x"],
                vec![
                    attr_s("mode", mode),
                    pb::AttributeProto {
                        name: "scales".into(),
                        r#type: 6,
                        floats: scales.to_vec(),
                        ..Default::default()
                    },
                ],
                vec![],
            )
        } else {
            (vec!["x", "s"], vec![attr_s("mode", mode)], vec![f32_tensor("s", &[4], &scales)])
        };
        let ours = model(opset, &[2, 3, 4], vec![node("Upsample", &ins, "y", attrs)], inits);
        let attrs = vec![
            attr_s("mode", mode),
            attr_s("coordinate_transformation_mode", "asymmetric"),
            attr_s("nearest_mode", "floor"),
        ];
        let nodes = vec![node("Resize", &["x", "", "s"], "y", attrs)];
        let theirs = model(13, &[2, 3, 4], nodes, vec![f32_tensor("s", &[4], &scales)]);
        out.push((case(format!("Upsample opset {opset} {mode}"), ours, 2, &[2, 3, 4]), theirs));
    }
    out
}

/// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over x `[2, 4, 3]` (N, C, d1), which
/// tract lacks, against their definition with the target and weights folded into a constant
/// `m[n, c, d] = weight[c]` where `c == target[n, d]` and the target is not ignored (0 elsewhere):
/// `loss = -sum_c(x * m)`, summed, or divided by `sum(m)` for `mean`.
fn loss_cases() -> Vec<(Case, Vec<u8>)> {
    let mut out = Vec::new();
    let (n, c, d) = (2usize, 4usize, 3usize);
    // (op, reduction, weight, ignore_index, target)
    type Form = (&'static str, &'static str, Option<[f32; 4]>, Option<i64>, [i64; 6]);
    let forms: [Form; 6] = [
        ("NegativeLogLikelihoodLoss", "mean", Some([0.5, 1.5, -0.25, 2.0]), Some(-1), [0, -1, 3, 2, 1, -1]),
        ("NegativeLogLikelihoodLoss", "none", None, Some(5), [3, 5, 0, 1, 5, 2]),
        ("NegativeLogLikelihoodLoss", "sum", Some([1.0, 0.25, 3.0, 0.5]), None, [2, 2, 0, 3, 1, 0]),
        ("NegativeLogLikelihoodLoss", "mean", None, None, [1, 3, 0, 2, 2, 1]),
        ("SoftmaxCrossEntropyLoss", "mean", None, Some(1), [1, 3, 0, 1, 2, 1]),
        ("SoftmaxCrossEntropyLoss", "none", Some([0.5, 1.5, -0.25, 2.0]), Some(0), [0, 3, 2, 1, 0, 2]),
    ];
    for (op, reduction, weight, ignore_index, target) in forms {
        let mut m = vec![0f32; n * c * d];
        for (k, &t) in target.iter().enumerate() {
            if Some(t) != ignore_index {
                let w = weight.map_or(1.0, |w| w[t as usize]);
                m[(k / d * c + t as usize) * d + k % d] = w;
            }
        }
        let mut attrs = vec![attr_s("reduction", reduction)];
        let mut ins = vec!["x", "t"];
        let mut inits = vec![i64_nd("t", &[n, d], &target)];
        if let Some(w) = weight {
            ins.push("w");
            inits.push(f32_tensor("w", &[c], &w));
        }
        if let Some(ii) = ignore_index {
            attrs.push(attr_i("ignore_index", ii));
        }
        let ours = model(13, &[c, d], vec![node(op, &ins, "y", attrs)], inits);
        let src = if op == "SoftmaxCrossEntropyLoss" { "lp" } else { "x" };
        let mut nodes = vec![
            node("LogSoftmax", &["x"], "lp", vec![attr_i("axis", 1)]),
            node("Mul", &[src, "m"], "p", vec![]),
            node("ReduceSum", &["p", "one"], "r", vec![attr_i("keepdims", 0)]),
        ];
        let denom: f32 = m.iter().sum();
        match reduction {
            "none" => nodes.push(node("Neg", &["r"], "y", vec![])),
            "sum" => {
                nodes.push(node("Neg", &["r"], "l", vec![]));
                nodes.push(node("ReduceSum", &["l"], "y", vec![attr_i("keepdims", 0)]));
            }
            _ => {
                nodes.push(node("Neg", &["r"], "l", vec![]));
                nodes.push(node("ReduceSum", &["l"], "s", vec![attr_i("keepdims", 0)]));
                nodes.push(node("Div", &["s", "denom"], "y", vec![]));
            }
        }
        let inits = vec![f32_tensor("m", &[n, c, d], &m), i64_tensor("one", &[1]), f32_tensor("denom", &[], &[denom])];
        let theirs = model(13, &[c, d], nodes, inits);
        let name = format!("{op} {reduction} weight {} ignore_index {ignore_index:?}", weight.is_some());
        out.push((case(name, ours, n, &[c, d]), theirs));
    }
    out
}

#[test]
fn ops_against_their_definition() {
    for (c, theirs) in definition_cases() {
        let e =
            compare_with(&c.name, &c.bytes, &theirs, c.batch, &c.x_dims).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert!(e <= TOLERANCE, "{}: error {e:e} against its definition", c.name);
    }
}
