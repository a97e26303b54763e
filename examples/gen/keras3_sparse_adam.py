#!/usr/bin/env python3
"""Why keras_gru_embedding ends 2 points from Keras: Keras 3's Adam on the TensorFlow backend
squares an Embedding's gradient per occurrence of a token (the gradient is a tf.IndexedSlices and
`ops.square` maps over its slices before duplicates are summed), so the table's second moment is
the sum of squares, not the square of the sum. tf_keras, PyTorch and Keras 3 on JAX/PyTorch
(dense gradients) apply the standard update, as distk-gpu does.

Trains the fixture's model with Keras 3 twice, with its stock Adam and with the same Adam fed
dense gradients (tf.convert_to_tensor sums the duplicates), then runs distk-gpu on the exported
fixture, and prints the three epoch-loss curves and test accuracies. Measured 2026-12-07 (keras
3.13, tensorflow 2.21): stock Keras 2.2292 ... 1.0772, 55.8%; dense-gradient Keras and distk-gpu
both 2.2725 ... 1.1306, 57.8% (every epoch equal to 4 decimals).

    OMP_NUM_THREADS=1 python examples/gen/keras3_sparse_adam.py   # oracle venv, repository root
"""
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import export_real_models as E  # noqa: E402

NAME = "keras_gru_embedding"


def keras_run(dense):
    import keras as K
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    build, kind, epochs = E.keras_models(K, False)[NAME]
    (xt, yt), (xs, ys), _, _ = E.data(kind)
    K.backend.clear_session()
    K.utils.set_random_seed(E.SEED)
    m = build()
    m(xt[:1])
    rng = np.random.default_rng(E.SEED)  # the generator's small values for zero weights
    for v in m.weights:
        w = np.asarray(v.numpy())
        if w.dtype.kind == "f" and not w.any():
            v.assign(rng.uniform(-0.05, 0.05, w.shape).astype(w.dtype))
    opt = K.optimizers.Adam(learning_rate=E.fit_lr(NAME), epsilon=1e-7)
    loss_fn = K.losses.SparseCategoricalCrossentropy()
    losses = []
    for _ in range(epochs):
        total = 0.0
        for s in range(0, len(xt), E.BATCH):
            xb, yb = xt[s:s + E.BATCH], yt[s:s + E.BATCH]
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, m(xb, training=True))
            grads = tape.gradient(loss, m.trainable_variables)
            if dense:
                grads = [tf.convert_to_tensor(g) for g in grads]
            opt.apply_gradients(zip(grads, m.trainable_variables))
            total += float(loss) * len(xb)
        losses.append(total / len(xt))
    accuracy = float(np.mean(np.argmax(m.predict(xs, verbose=0), 1) == ys))
    return losses, accuracy


def distk_run():
    import json
    side = json.load(open(f"{E.OUT}/{NAME}.json"))
    fit = side["fit"]
    out = subprocess.run(
        ["target/release/distk-gpu", "run", f"{E.OUT}/{NAME}.onnx", "--data", side["train"], "--epochs",
         str(fit["epochs"]), "--batch-size", str(fit["batch"]), "--optimizer", "adam", "--learning-rate",
         str(fit["lr"]), "--device", "cpu", "--out", "/tmp/keras3_sparse_adam.onnx"],
        capture_output=True, text=True, check=True)
    losses = [float(v) for v in re.findall(r"epoch \d+: loss ([0-9.]+)", out.stderr + out.stdout)]
    ev = subprocess.run(["target/release/distk-gpu", "evaluate", "/tmp/keras3_sparse_adam.onnx", "--data",
                         side["test"], "--device", "cpu", "--json"], capture_output=True, text=True, check=True)
    return losses, json.loads(ev.stdout)["accuracy"]


if __name__ == "__main__":
    for label, (losses, acc) in [("Keras 3, stock Adam", keras_run(False)),
                                 ("Keras 3, dense gradients", keras_run(True)),
                                 ("distk-gpu", distk_run())]:
        print(f"{label:26s} accuracy {acc:.4f} epoch losses {[round(v, 4) for v in losses]}")
