#!/usr/bin/env python3
"""Training throughput of the bundled models in PyTorch eager mode (CPU, or CUDA with --cuda), from
the same ONNX files and initial weights distk-gpu trains, beside `distk-gpu bench train` run in the
same sitting; prints rows/s and the ratios distk-gpu / PyTorch.

Needs: pip install torch onnx onnx2torch. Usage (repository root, after a release build):
    python3 scripts/bench_torch.py [--batch-size 128] [--repeats 5] [--cuda] [--bin target/release/distk-gpu]
"""
import argparse
import json
import subprocess

import onnx
import onnx2torch
import torch
import torch.nn.functional as F

from torch_timing import rows_per_s, synthetic_rows

MODELS = ["keras_mlp_mnist", "keras_cnn"]


def input_shape(model, batch):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [batch] + [d.dim_value for d in dims[1:]]


def torch_rows_per_s(path, batch, repeats, device):
    proto = onnx.load(path)
    net = onnx2torch.convert(proto).to(device)
    # onnx2torch keeps ONNX initializers as buffers: make the float ones trainable parameters.
    for module in net.modules():
        for name, buf in list(module._buffers.items()):
            if buf is not None and buf.is_floating_point() and buf.dim() > 0:
                del module._buffers[name]
                module.register_parameter(name, torch.nn.Parameter(buf))
    shape = input_shape(proto, batch)
    width = 1
    for d in shape[1:]:
        width *= d
    classes = proto.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    # The same synthetic rows as `distk-gpu bench train`.
    x, y = synthetic_rows(batch, width, classes, device)
    x = x.reshape(shape)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)

    def step():
        opt.zero_grad(set_to_none=True)
        probs = net(x)
        loss = F.nll_loss(torch.log(probs.clamp_min(1e-7)), y)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    return rows_per_s(step, batch, repeats, sync)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cuda", action="store_true")
    ap.add_argument("--bin", default="target/release/distk-gpu")
    ap.add_argument("--models-dir", default="examples/models")
    args = ap.parse_args()
    device = torch.device("cuda" if args.cuda else "cpu")
    ours = json.loads(
        subprocess.run(
            [args.bin, "bench", "train", "--json", "--batch-size", str(args.batch_size), "--repeats", str(args.repeats), "--models-dir", args.models_dir],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    print(f"torch {torch.__version__} on {device} ({torch.get_num_threads()} threads); distk-gpu adapter: {ours['adapter']}")
    print("| model | PyTorch rows/s | distk-gpu executor | distk-gpu rows/s | distk / PyTorch |")
    print("|---|---|---|---|---|")
    for name in MODELS:
        base = torch_rows_per_s(f"{args.models_dir}/{name}.onnx", args.batch_size, args.repeats, device)
        for r in ours["forward"]:
            if r["model"] == name:
                print(f"| {name} | {base:.0f} | {r['executor']} | {r['rows_per_s']:.0f} | {r['rows_per_s'] / base:.2f} |")


if __name__ == "__main__":
    main()
