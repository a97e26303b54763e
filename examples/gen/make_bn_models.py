#!/usr/bin/env python3
"""Makes the small BatchNormalization test models (no fixture has one) and their PyTorch training
oracles. Run from the repository root with `../shared` beside it:

    pip install numpy onnx torch pyarrow
    python3 examples/gen/make_bn_models.py

Writes tests/fixtures/models/{bn_mlp,bn_cnn}.onnx and tests/fixtures/oracles/train/{bn_mlp,bn_cnn}__digits.{json,npz}
(plain SGD, lr 0.05, batch 32, 5 steps, BatchNorm momentum 0.99 and unbiased running variance, replayed
by ../shared/fixtures/ref/train_oracle.py).
"""
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(5)
os.makedirs("tests/fixtures/models", exist_ok=True)


def init(name, shape, scale=0.2):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], producer_name="distk-gpu tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


# MLP: x[N,64] -> MatMul+Add -> BatchNorm -> Relu -> MatMul+Add -> Softmax
mlp = helper.make_graph(
    [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="dense"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="dense_bias"),
        helper.make_node("BatchNormalization", ["hb", "gamma", "beta", "mean", "var"], ["hn"], name="bn", epsilon=1e-3),
        helper.make_node("Relu", ["hn"], ["hr"], name="relu"),
        helper.make_node("MatMul", ["hr", "w2"], ["z"], name="logits"),
        helper.make_node("Add", ["z", "b2"], ["zb"], name="logits_bias"),
        helper.make_node("Softmax", ["zb"], ["y"], name="softmax", axis=-1),
    ],
    "bn_mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
    [
        init("w1", (64, 32)),
        numpy_helper.from_array(np.zeros(32, np.float32), "b1"),
        numpy_helper.from_array(np.ones(32, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(32, np.float32), "beta"),
        numpy_helper.from_array(np.zeros(32, np.float32), "mean"),
        numpy_helper.from_array(np.ones(32, np.float32), "var"),
        init("w2", (32, 10)),
        numpy_helper.from_array(np.zeros(10, np.float32), "b2"),
    ],
)
save(mlp, "tests/fixtures/models/bn_mlp.onnx")

# CNN: x[N,64] -> Reshape [N,1,8,8] -> Conv 3x3 (8) -> BatchNorm -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> Softmax
cnn = helper.make_graph(
    [
        helper.make_node("Reshape", ["x", "shape"], ["img"], name="to_image"),
        helper.make_node("Conv", ["img", "cw", "cb"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["cn"], name="bn", epsilon=1e-3),
        helper.make_node("Relu", ["cn"], ["cr"], name="relu"),
        helper.make_node("GlobalAveragePool", ["cr"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["z"], name="dense", transB=1),
        helper.make_node("Softmax", ["z"], ["y"], name="softmax", axis=1),
    ],
    "bn_cnn",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
    [
        numpy_helper.from_array(np.array([-1, 1, 8, 8], np.int64), "shape"),
        init("cw", (8, 1, 3, 3), 0.5),
        numpy_helper.from_array(np.zeros(8, np.float32), "cb"),
        numpy_helper.from_array(np.full(8, 1.5, np.float32), "gamma"),
        numpy_helper.from_array(np.full(8, 0.1, np.float32), "beta"),
        numpy_helper.from_array(np.full(8, 0.2, np.float32), "mean"),
        numpy_helper.from_array(np.full(8, 2.0, np.float32), "var"),
        init("fw", (10, 8), 0.5),
        numpy_helper.from_array(np.zeros(10, np.float32), "fb"),
    ],
)
save(cnn, "tests/fixtures/models/bn_cnn.onnx")

for name in ["bn_mlp", "bn_cnn"]:
    subprocess.run(
        [
            sys.executable,
            "../shared/fixtures/ref/train_oracle.py",
            "--model", f"tests/fixtures/models/{name}.onnx",
            "--data", "examples/data/digits_train.parquet",
            "--lr", "0.05", "--batch-size", "32", "--steps", "5", "--bn-momentum", "0.99",
            "--out", f"tests/fixtures/oracles/train/{name}__digits",
        ],
        check=True,
    )
