"""A small PyTorch regression model for the tests (tests/fixtures/models/torch_regression.onnx):
64 inputs -> 16 (ReLU) -> 1 output, no final activation, exported with torch.onnx.export.

    /work/venv-oracle/bin/python examples/gen/regression_model.py
"""

import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
torch.onnx.export(
    model,
    (torch.zeros(1, 64),),
    os.path.join(ROOT, "tests", "fixtures", "models", "torch_regression.onnx"),
    input_names=["x"],
    output_names=["y"],
    dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
    dynamo=False,
)
