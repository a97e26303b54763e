#!/usr/bin/env python3
"""The trained exports of tests/real_exports.rs in onnxruntime: trains each fixture of
tests/fixtures/real with `distk-gpu run` as the test does (the sidecar's Adam rate, batch and
epochs, CPU executor), then compares onnxruntime's forward of the trained file on the test rows
with `distk-gpu predict` on the same rows (max abs difference / max abs value). tract's side runs in
the test itself; CI installs no onnxruntime, so this one runs by hand (oracle venv, repository
root, after a release build):

    python examples/gen/trained_in_onnxruntime.py
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq

BIN = "target/release/distk-gpu"
FIXTURES = "tests/fixtures/real"
ADD_MISSING_BIASES = {"torch_transformer"}


def main():
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(f[:-5] for f in os.listdir(FIXTURES) if f.endswith(".json")):
            side = json.load(open(f"{FIXTURES}/{name}.json"))
            fit, trained = side["fit"], f"{tmp}/{name}.onnx"
            args = [BIN, "run", f"{FIXTURES}/{side['model']}", "--data", side["train"], "--epochs", str(fit["epochs"]),
                    "--batch-size", str(fit["batch"]), "--optimizer", "adam", "--learning-rate", str(fit["lr"]),
                    "--device", "cpu", "--quiet", "--out", trained]
            if side.get("from_logits"):
                args += ["--from-logits", "true"]
            if name in ADD_MISSING_BIASES:
                args.append("--add-missing-biases")
            if "bn_momentum" in side:
                args += ["--bn-momentum", str(side["bn_momentum"])]
            subprocess.run(args, check=True, capture_output=True)
            preds = f"{tmp}/{name}.parquet"
            subprocess.run([BIN, "predict", trained, "--data", side["test"], "--device", "cpu", "--out", preds],
                           check=True, capture_output=True)
            ours = np.array(pq.read_table(preds).column("prediction").to_pylist(), dtype=np.float64)
            x = np.array(pq.read_table(side["test"]).column("features").to_pylist())
            sess = ort.InferenceSession(trained, providers=["CPUExecutionProvider"])
            inp = sess.get_inputs()[0]
            x = x.astype(np.int64 if "int64" in inp.type else np.float32)
            theirs = sess.run(None, {inp.name: x})[0].astype(np.float64)
            err = np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30)
            worst = max(worst, err)
            print(f"{name:22s} {len(x)} test rows: distk-gpu predict vs onnxruntime {err:.1e}", flush=True)
    print(f"worst {worst:.1e}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
