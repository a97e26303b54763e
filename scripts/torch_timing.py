"""What the PyTorch baselines of `distk-gpu bench train` share: its synthetic rows and labels, and
the timing of training steps (warm-up, then the median over repeats of about half a second of
steps each). Used by bench_torch.py and bench_torch_native.py."""
import statistics
import time

import torch


def synthetic_rows(batch, width, classes, device="cpu"):
    """The rows and labels `distk-gpu bench train` uses (src/bench/forward.rs `synthetic`)."""
    n = batch * width
    x = torch.tensor([((i * 7919) % 1000) / 1000.0 for i in range(n)], dtype=torch.float32).reshape(batch, width)
    y = torch.tensor([i % classes for i in range(batch)], dtype=torch.int64)
    return x.to(device), y.to(device)


def rows_per_s(step, batch, repeats, sync=lambda: None):
    """Training rows per second of `step` (one step of `batch` rows); `sync` waits for the device."""
    for _ in range(2):
        step()
    sync()
    t0 = time.perf_counter()
    step()
    sync()
    once = max(time.perf_counter() - t0, 1e-6)
    steps = max(1, min(1000, int(0.5 / once)))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        times.append((time.perf_counter() - t) / steps)
    return batch / statistics.median(times)
