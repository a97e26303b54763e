"""The ONNX project's reference image classifiers, as users export them today, checked by hand.

The ONNX model zoo's classic classifiers (AlexNet, DenseNet121, Inception v1/v3, ResNet50, ShuffleNet,
SqueezeNet, VGG19) are rebuilt from torchvision with seeded random weights and exported with
PyTorch's default exporter (torch 2.15, dynamo) with a dynamic batch; ZFNet and Inception v2 have no
torchvision model. For each, this script writes the model, 8 random rows as Parquet (features
list<float32>, label int64) and onnxruntime's outputs for them, then runs distk-gpu: `inspect`,
`predict` (compared with onnxruntime, max abs difference over the logits) and one epoch of
`run` (4 adam steps of batch 2; the loss must be finite). Models are hundreds of MB: they go to
a scratch folder, never into the repo.

Usage (the oracle venv: torch, torchvision, onnxruntime, pyarrow):
    python examples/gen/reference_architectures.py OUT_DIR [BIN] [names...]
"""

import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

warnings.simplefilter("ignore")

MODELS = {
    "alexnet": 224,
    "squeezenet1_0": 224,
    "shufflenet_v2_x1_0": 224,
    "googlenet": 224,
    "resnet50": 224,
    "densenet121": 224,
    "inception_v3": 299,
    "vgg19": 224,
}


def export(name, size, out):
    import torch
    import torchvision

    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    m = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    x = torch.randn(2, 3, size, size)
    path = os.path.join(out, f"{name}.onnx")
    torch.onnx.export(
        m, (x,), path, input_names=["input"], output_names=["logits"], dynamo=True, external_data=False,
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    return path


def data(size, out, name):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3 * size * size), dtype=np.float32)
    y = rng.integers(0, 1000, 8)
    path = os.path.join(out, f"{name}.parquet")
    pq.write_table(pa.table({"features": list(x), "label": y}), path)
    return path, x


def main():
    out = sys.argv[1]
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/distk-gpu"
    names = sys.argv[3:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    results = {}
    for name in names:
        size = MODELS[name]
        r = {}
        try:
            model = export(name, size, out)
            r["mb"] = round(os.path.getsize(model) / 1e6, 1)
            rows, x = data(size, out, name)
            import onnxruntime as ort

            sess = ort.InferenceSession(model)
            want = np.concatenate([sess.run(None, {"input": x[i : i + 2].reshape(2, 3, size, size)})[0] for i in (0, 2, 4, 6)])
            ins = subprocess.run([binary, "inspect", model], capture_output=True, text=True)
            r["inspect"] = "ok" if ins.returncode == 0 else ins.stderr.strip().splitlines()[-1]
            pred = os.path.join(out, f"{name}.pred.parquet")
            t = time.time()
            p = subprocess.run([binary, "predict", model, "--data", rows, "--out", pred, "--batch-size", "2", "--device", "cpu"], capture_output=True, text=True)
            r["predict_s"] = round(time.time() - t, 1)
            if p.returncode == 0:
                import pyarrow.parquet as pq

                got = np.stack(pq.read_table(pred).column("prediction").to_pylist()).astype(np.float32)
                r["max_abs_diff_vs_onnxruntime"] = float(np.abs(got - want).max())
                r["max_abs_logit"] = float(np.abs(want).max())
            else:
                r["predict"] = p.stderr.strip().splitlines()[-1]
            hist = os.path.join(out, f"{name}.history.json")
            t = time.time()
            tr = subprocess.run(
                [binary, "run", model, "--data", rows, "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--quiet",
                 "--out", os.path.join(out, f"{name}.trained.onnx"), "--history", hist],
                capture_output=True, text=True,
            )
            r["train_s"] = round(time.time() - t, 1)
            if tr.returncode == 0:
                h = json.load(open(hist))
                r["train_losses"] = [round(s["loss"], 4) for s in h["steps"]]
            else:
                r["train"] = tr.stderr.strip().splitlines()[-1]
        except Exception as e:  # noqa: BLE001 - the report names what failed
            r["error"] = f"{type(e).__name__}: {e}"[:300]
        results[name] = r
        print(json.dumps({name: r}), flush=True)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
