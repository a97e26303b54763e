#!/usr/bin/env python3
"""Training throughput of the real-export fixtures beside PyTorch with its native modules.

For torch_resnet (Conv2d/BatchNorm2d residual block), torch_lstm (nn.LSTM) and torch_transformer
(nn.TransformerEncoderLayer), the PyTorch model is built from the classes of
examples/gen/export_real_models.py (the ones the fixtures were exported from) and trained with Adam
(cross-entropy on logits) in this process; `distk-gpu bench train --model tests/fixtures/real/NAME.onnx`
trains the exported ONNX in its own process. Both use the same synthetic rows, batch size and
thread count (all cores). Prints rows/s and the ratio distk-gpu / PyTorch per executor.

Needs torch (the oracle venv). Usage (repository root, after a release build):
    python scripts/bench_torch_native.py [--batch-size 128] [--repeats 5] [--bin target/release/distk-gpu]
"""
import argparse
import json
import os
import subprocess
import sys

os.environ["OMP_NUM_THREADS"] = str(os.cpu_count())
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "gen"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from export_real_models import torch_models  # noqa: E402
from torch_timing import rows_per_s, synthetic_rows  # noqa: E402

MODELS = ["torch_resnet", "torch_lstm", "torch_transformer"]
WIDTH = {"torch_resnet": 784, "torch_lstm": 64, "torch_transformer": 64}


def torch_rows_per_s(name, batch, repeats):
    torch.manual_seed(42)
    net = torch_models()[name][0]()
    net.train()
    # The same synthetic rows and labels as `distk-gpu bench train`.
    x, y = synthetic_rows(batch, WIDTH[name], 10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return rows_per_s(step, batch, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bin", default="target/release/distk-gpu")
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    cmd = [a.bin, "bench", "train", "--json", "--batch-size", str(a.batch_size), "--repeats", str(a.repeats)]
    for name in MODELS:
        cmd += ["--model", f"tests/fixtures/real/{name}.onnx"]
    ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["forward"]
    print(f"batch {a.batch_size}, {os.cpu_count()} threads, torch {torch.__version__}")
    print("| model | PyTorch rows/s | distk-gpu executor | distk-gpu rows/s | distk / PyTorch |")
    print("|---|---|---|---|---|")
    for name in MODELS:
        theirs = torch_rows_per_s(name, a.batch_size, a.repeats)
        for r in ours:
            if r["model"] == name:
                print(f"| {name} | {theirs:,.0f} | {r['executor']} | {r['rows_per_s']:,.0f} | {r['rows_per_s'] / theirs:.2f} |")


if __name__ == "__main__":
    main()
