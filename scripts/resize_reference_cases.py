#!/usr/bin/env python3
"""Writes random Resize cases (opsets 13, 18 and 19: every mode, coordinate transformation,
nearest_mode, cubic_coeff_a, exclude_outside, tf_crop_and_resize with its roi and
extrapolation_value, axes, antialias, keep_aspect_ratio_policy, scales or sizes) with the outputs
of onnx's reference implementation, in the layout of scripts/onnx_node_cases.py, so that the
conformance test runs them on both executors:

    target/py-onnx/bin/python3 scripts/resize_reference_cases.py /tmp/resize-cases [COUNT]
    DISTK_ONNX_NODE_CASES=/tmp/resize-cases DISTK_CONFORMANCE_UPDATE=1 WGPU_BACKEND=vulkan \
        cargo test --release --locked --workspace --test onnx_conformance
    git checkout docs/onnx-conformance.md onnx-import/tests/conformance_baseline.txt

(the update rewrites the report from these cases: read its totals, then restore it). Seeded; the
configurations the reference refuses (it fails on negative axes) are skipped.
"""

import json
import os
import random
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator


def write(directory, name, array):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) == 3 else 400
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    rng = random.Random(7)
    nrng = np.random.default_rng(7)
    listed = []
    while len(listed) < count:
        opset = rng.choice([13, 18, 19])
        rank = rng.choice([2, 3, 4])
        shape = [rng.randint(1, 6) for _ in range(rank)]
        mode = rng.choice(["nearest", "linear", "cubic"])
        coords = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize"]
        if opset >= 19:
            coords.append("half_pixel_symmetric")
        coord = rng.choice(coords)
        attrs = dict(mode=mode, coordinate_transformation_mode=coord)
        if mode == "nearest":
            attrs["nearest_mode"] = rng.choice(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
        if mode == "cubic":
            attrs["cubic_coeff_a"] = rng.choice([-0.75, -0.5, -0.6])
        if rng.random() < 0.3:
            attrs["exclude_outside"] = 1
        if coord == "tf_crop_and_resize":
            attrs["extrapolation_value"] = rng.choice([0.0, 3.5])
        axes = None
        if opset >= 18:
            if mode != "nearest" and rng.random() < 0.4:
                attrs["antialias"] = 1
            if rng.random() < 0.5:
                axes = rng.sample(range(rank), rng.randint(1, rank))
                attrs["axes"] = axes
        k = len(axes) if axes else rank
        resized = axes if axes else list(range(rank))
        inputs = [("X", nrng.uniform(-2, 2, shape).astype(np.float32))]
        names = ["X", "", "", ""]
        if coord == "tf_crop_and_resize":
            starts = [rng.choice([0.0, rng.uniform(-0.3, 0.5)]) for _ in range(k)]
            ends = [rng.choice([1.0, rng.uniform(0.5, 1.3)]) for _ in range(k)]
            inputs.append(("roi", np.array(starts + ends, dtype=np.float32)))
            names[1] = "roi"
        if rng.random() < 0.5:
            if opset >= 18 and rng.random() < 0.3:
                attrs["keep_aspect_ratio_policy"] = rng.choice(["not_larger", "not_smaller"])
            inputs.append(("sizes", np.array([rng.randint(1, 9) for _ in range(k)], dtype=np.int64)))
            names[3] = "sizes"
        else:
            scales = [rng.choice([1.0, 2.0, 0.5, 3.0, round(rng.uniform(0.3, 3.0), 3)]) for _ in range(k)]
            scales = [max(s, 1.0 / shape[a] + 1e-3) for s, a in zip(scales, resized)]
            inputs.append(("scales", np.array(scales, dtype=np.float32)))
            names[2] = "scales"
        while names[-1] == "":
            names.pop()
        node = helper.make_node("Resize", names, ["Y"], **attrs)
        graph = helper.make_graph(
            [node],
            "g",
            [
                helper.make_tensor_value_info(
                    n, TensorProto.FLOAT if a.dtype == np.float32 else TensorProto.INT64, list(a.shape)
                )
                for n, a in inputs
            ],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        try:
            y = ReferenceEvaluator(model).run(None, dict(inputs))[0]
        except Exception:
            continue
        if y.size == 0:
            continue
        name = f"resize_{len(listed):03d}"
        directory = os.path.join(out, name)
        os.makedirs(directory)
        with open(os.path.join(directory, "model.onnx"), "wb") as f:
            f.write(model.SerializeToString())
        ins = []
        for j, (n, a) in enumerate(inputs):
            write(directory, f"input_{j}.pb", a)
            ins.append(dict(name=n, kind="tensor", dtype=str(a.dtype), shape=list(a.shape), file=f"input_{j}.pb"))
        write(directory, "output_0.pb", y)
        outs = [dict(name="Y", kind="tensor", dtype="float32", shape=list(y.shape), file="output_0.pb")]
        listed.append(
            dict(
                name=name,
                op_types=["Resize"],
                opset=opset,
                inputs=ins,
                outputs=outs,
                eligible=True,
                onnx_rtol=1e-3,
                onnx_atol=1e-5,
                op="Resize",
            )
        )
    manifest = dict(onnx_version=onnx.__version__, generator="scripts/resize_reference_cases.py", cases=listed)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"resize_reference_cases: {len(listed)} cases written to {out}")


if __name__ == "__main__":
    main()
