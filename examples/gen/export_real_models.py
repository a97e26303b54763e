#!/usr/bin/env python3
"""Exports the models of issue 10 the way users export them, with the original frameworks' own
oracles, for tests/real_exports.rs. Run from the repository root, in the oracle venv
(../shared/fixtures/gen/requirements-oracle.txt), TensorFlow and PyTorch in separate processes:

    OMP_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=3 python examples/gen/export_real_models.py tokens
    OMP_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=3 python examples/gen/export_real_models.py keras
    OMP_NUM_THREADS=1 python examples/gen/export_real_models.py torch

Writes, per model, tests/fixtures/real/<name>.onnx and <name>.json: the exporter, the data, the
loss, the framework's forward on 8 test rows, its own per-step losses of 5 plain-SGD steps in float32
and again in float64 from the same weights (lr 0.05,
batch 32, the first 160 training rows in order), and its test accuracy after `fit_epochs` epochs of
Adam (lr 0.005, batch 32, no shuffling). `tokens` writes examples/data/digits_tokens_*.parquet:
the digits' pixel values (0..16) as int64 token ids.

Keras models are exported with `model.export(format="onnx")` (Keras 3) through the sentinel trick
of ../shared/fixtures/gen/export_models.py, so zero biases keep their initializers; the ResNet-style
CNN with BatchNormalization uses tf_keras + tf2onnx (Keras 3 folds BatchNormalization away).
PyTorch models use torch.onnx.export's default (dynamo) exporter in eval mode.
"""
import itertools
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures", "gen"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_NUM_THREADS", "1")

OUT = "tests/fixtures/real"
SEED = 42
ONLY = []
LR = 0.05
BATCH = 32
STEPS = 5
# The accuracy run: Adam (Keras' epsilon 1e-7 in both frameworks), no shuffling.
FIT_LR = 0.005
# Per model (plain-SGD rate, Adam rate, epochs) where the defaults make a draw of the comparison:
# the Keras ResNet (BatchNormalization after ReLU, as tf2onnx needs) at SGD 0.05 explodes (loss
# 7.6 -> 14.8) and amplifies a 1e-6 gradient difference to 2e-3 in four steps, and after 2 epochs of
# Adam at 0.005 Keras' own accuracy moves by 4 points when its weights move by 1e-6; at Adam 0.001
# for 3 epochs it moves by 0.15. The MobileNet-style CNN's accuracy after 2 epochs at Adam 0.005
# moves by 1.5 points (standard deviation over four such perturbations), at 0.002 by 0.3.
RATES = {"keras_resnet_bn": (0.01, 0.001, 3), "keras_mobilenet": (LR, 0.002, 2)}


def sgd_lr(name):
    return RATES.get(name, (LR, FIT_LR))[0]


def fit_lr(name):
    return RATES.get(name, (LR, FIT_LR))[1]


def fit_epochs(name, default):
    return RATES[name][2] if name in RATES else default


def load(name):
    import pyarrow.parquet as pq
    t = pq.read_table(f"examples/data/{name}.parquet").to_pydict()
    x = np.array(t["features"])
    y = np.array(t["label"], dtype=np.int64)
    return (x.astype(np.int64) if x.dtype.kind == "i" else x.astype(np.float32)), y


def data(kind):
    train, test = {"digits": ("digits_train", "digits_test"), "mnist_small": ("mnist_small_train", "mnist_small_test"),
                   "tokens": ("digits_tokens_train", "digits_tokens_test")}[kind]
    return load(train), load(test), f"examples/data/{train}.parquet", f"examples/data/{test}.parquet"


def write_tokens():
    import pyarrow as pa
    import pyarrow.parquet as pq
    for part in ["train", "test"]:
        x, y = load(f"digits_{part}")
        ids = np.rint(x).astype(np.int64)
        assert ids.min() >= 0 and ids.max() <= 16
        table = pa.table({"features": pa.array(list(ids), type=pa.list_(pa.int64())), "label": pa.array(y, pa.int64())})
        pq.write_table(table, f"examples/data/digits_tokens_{part}.parquet")
        print(f"digits_tokens_{part}", ids.shape)


def sidecar(name, framework, exporter, kind, from_logits, fit_epochs, x_test, forward, losses, losses64, accuracy,
            extra=None):
    (_, _), (_, _), train_path, test_path = data(kind)
    side = {
        "model": f"{name}.onnx",
        "framework": framework,
        "exporter": exporter,
        "train": train_path,
        "test": test_path,
        "loss": "sparse_categorical_crossentropy",
        "from_logits": from_logits,
        "forward": {"rows": 8, "x": np.asarray(x_test[:8]).tolist(), "y": np.asarray(forward).tolist()},
        # `losses`: the framework's float32 steps; `losses_float64`: the same steps from the same
        # weights in float64, the framework's arithmetic without its rounding (TensorFlow's f32
        # BatchNormalization gradients are 1e-3 off it, so its f32 losses drift by 3e-4 in 5 steps).
        "sgd": {"lr": sgd_lr(name), "batch": BATCH, "steps": STEPS, "losses": [float(v) for v in losses],
                "losses_float64": [float(v) for v in losses64]},
        "fit": {"optimizer": "adam", "lr": fit_lr(name), "batch": BATCH, "epochs": fit_epochs, "shuffle": False,
                "test_accuracy": float(accuracy)},
    }
    side.update(extra or {})
    size = os.path.getsize(f"{OUT}/{name}.onnx")
    assert size <= 2 * 1024 * 1024, f"{name}.onnx is {size} bytes"
    with open(f"{OUT}/{name}.json", "w") as f:
        json.dump(side, f, indent=1)
    print(name, "losses", [round(v, 5) for v in losses], "accuracy", accuracy, "bytes", size)


# ------------------------------------------------------------------------------------------ Keras
def keras_models(K, legacy):
    L = K.layers
    out = {}
    if legacy:
        def resnet():
            # BatchNormalization after the activation: tf2onnx folds a BatchNormalization that
            # directly follows a convolution into it (and training would lose it).
            x_in = K.Input((784,), name="input")
            x = L.Reshape((28, 28, 1))(x_in)
            x = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", activation="relu")(x))
            y = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", activation="relu")(x))
            y = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", activation="relu")(y))
            x = L.Add()([x, y])
            # A flattened head: global average pooling over 8 channels learns so slowly that the
            # accuracy after 2 epochs is a draw (PyTorch's own runs spread over 10 points).
            x = L.Flatten()(L.MaxPooling2D(4)(x))
            return K.Model(x_in, L.Dense(10, activation="softmax")(x), name="keras_resnet_bn")
        out["keras_resnet_bn"] = (resnet, "mnist_small", 2)
        return out

    def mobilenet():
        return K.Sequential([
            K.Input((784,), name="input"), L.Reshape((28, 28, 1)),
            L.Conv2D(8, 3, strides=2, activation="relu6"),
            L.DepthwiseConv2D(3, activation="relu"), L.Conv2D(16, 1, activation="relu"),
            L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax")], name="keras_mobilenet")

    def lstm():
        return K.Sequential([K.Input((64,), name="input"), L.Reshape((8, 8)), L.LSTM(24),
                             L.Dense(10, activation="softmax")], name="keras_lstm")

    def gru_embedding():
        return K.Sequential([K.Input((64,), dtype="int64", name="input"), L.Embedding(17, 8), L.GRU(16),
                             L.Dense(10, activation="softmax")], name="keras_gru_embedding")

    def conv1d():
        return K.Sequential([K.Input((64,), name="input"), L.Reshape((8, 8)), L.Conv1D(16, 3, activation="relu"),
                             L.GlobalMaxPooling1D(), L.Dense(10, activation="softmax")], name="keras_conv1d")

    def transformer():
        x_in = K.Input((64,), name="input")
        x = L.Dense(16)(L.Reshape((8, 8))(x_in))
        a = L.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
        x = L.LayerNormalization()(L.Add()([x, a]))
        # gelu's tanh form: tf2onnx writes the erf form with an `Erfc`, which is no ONNX op.
        f = L.Dense(16)(L.Dense(32, activation=lambda v: K.activations.gelu(v, approximate=True))(x))
        x = L.LayerNormalization()(L.Add()([x, f]))
        x = L.GlobalAveragePooling1D()(x)
        return K.Model(x_in, L.Dense(10, activation="softmax")(x), name="keras_transformer")

    out["keras_mobilenet"] = (mobilenet, "mnist_small", 2)
    out["keras_lstm"] = (lstm, "digits", 10)
    out["keras_gru_embedding"] = (gru_embedding, "tokens", 10)
    out["keras_conv1d"] = (conv1d, "digits", 10)
    out["keras_transformer"] = (transformer, "digits", 10)
    return out


def export_keras():
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import tf_keras
    from export_models import ort_run, versions
    ver = versions()
    for legacy, K in [(False, keras), (True, tf_keras)]:
        for name, (build, kind, epochs) in keras_models(K, legacy).items():
            if ONLY and name not in ONLY:
                continue
            epochs = fit_epochs(name, epochs)
            K.backend.clear_session()
            K.utils.set_random_seed(SEED)
            model = build()
            (x_train, y_train), (x_test, y_test), _, _ = data(kind)
            model(x_train[:1])
            # Zero-initialised weights (biases, LayerNorm's beta) get small values, so that no
            # exporter folds `x + 0` away and the fixtures train every Keras weight.
            rng = np.random.default_rng(SEED)
            for v in model.weights:
                w = np.asarray(v.numpy())
                if w.dtype.kind == "f" and not w.any():
                    v.assign(rng.uniform(-0.05, 0.05, w.shape).astype(w.dtype))
            path = f"{OUT}/{name}.onnx"
            if legacy:
                import tf2onnx
                spec = (tf.TensorSpec((None, x_train.shape[1]), tf.float32, name="input"),)
                fn = lambda p: tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=p)
                exporter = "tf_keras " + ver.get("tf_keras", "") + ", tf2onnx.convert.from_keras(opset=17)"
            else:
                fn = lambda p: model.export(p, format="onnx", verbose=False)
                exporter = "keras " + ver.get("keras", "") + ", model.export(format='onnx')"
            unlocated = sentinel_export(model, fn, path)
            forward = ort_run(path, x_test[:8])
            fw = np.asarray(model(x_test[:8], training=False))
            assert np.abs(fw - forward).max() < 1e-4, f"{name}: onnxruntime and Keras differ"
            # The framework's own steps: train_on_batch returns the loss of the batch before the update.
            model.compile(optimizer=K.optimizers.SGD(learning_rate=sgd_lr(name)), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            weights = model.get_weights()
            losses = []
            for s in range(STEPS):
                xb, yb = x_train[s * BATCH:(s + 1) * BATCH], y_train[s * BATCH:(s + 1) * BATCH]
                losses.append(step_keras(model, xb, yb))
            losses64 = keras_float64_losses(K, legacy, build, weights, x_train, y_train, sgd_lr(name))
            model.set_weights(weights)
            model.compile(optimizer=K.optimizers.Adam(learning_rate=fit_lr(name), epsilon=1e-7),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(x_train, y_train, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
            accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0, return_dict=True)["accuracy"]
            sidecar(name, f"{'tf_keras' if legacy else 'keras'} on tensorflow {ver.get('tensorflow')}", exporter, kind,
                    False, epochs, x_test, forward, losses, losses64, accuracy,
                    {"unlocated_by_sentinels": unlocated, "zero_weights": "given uniform(-0.05, 0.05) before export"})


def sentinel_export(model, export_fn, path):
    """../shared/fixtures/gen/export_models.py's sentinel trick (every Keras weight keeps an
    initializer holding its true initial value), except that float initializers that are no
    variable (relu6's 6, gelu's constants, an attention scale) are kept as the exporter wrote them."""
    import tempfile
    import onnx
    from onnx import numpy_helper
    from export_models import model_weights
    variables = model_weights(model)
    orig = [np.array(v.numpy()) for v in variables]
    rng = np.random.default_rng(987654321)
    sent = [rng.uniform(0.5, 1.5, o.shape).astype(o.dtype) for o in orig]
    for v, s in zip(variables, sent):
        v.assign(s)
    try:
        with tempfile.TemporaryDirectory() as td:
            export_fn(os.path.join(td, "s.onnx"))
            m = onnx.load(os.path.join(td, "s.onnx"))
    finally:
        for v, o in zip(variables, orig):
            v.assign(o)
    used = set()
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype != np.float32 or a.size < 2:
            continue
        for i, s in enumerate(sent):
            if a.size != s.size:
                continue
            perms = [p for p in itertools.permutations(range(s.ndim)) if a.ndim == s.ndim
                     and s.transpose(p).shape == a.shape and np.array_equal(a, s.transpose(p))]
            if perms:  # a layout change (Conv2D HWIO -> OIHW, DepthwiseConv2D HWCM -> (C*M)1HW, ...)
                val = orig[i].transpose(perms[0])
            elif np.array_equal(a.ravel(), s.ravel()):
                val = orig[i].reshape(a.shape)
            else:
                continue
            t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(val, dtype=np.float32), t.name))
            used.add(i)
            break
    missing = [v.name for i, v in enumerate(variables) if i not in used]
    if missing:
        # tf2onnx rearranges recurrent weights (gate order, W/R/B blocks): the sentinels cannot be
        # located, so the model is exported with its true weights, which are all non-zero here
        # (zero biases were given small values first), so nothing folds away.
        export_fn(path)
        return missing
    onnx.save(m, path)
    return []


def keras_float64_losses(K, legacy, build, weights, x_train, y_train, lr):
    """The plain-SGD steps of the model rebuilt in float64 from the same weights."""
    set_floatx = K.backend.set_floatx if legacy else K.config.set_floatx
    cast = lambda a: a.astype(np.float64) if a.dtype.kind == "f" else a
    set_floatx("float64")
    try:
        m = build()
        m(cast(x_train[:1]))
        m.set_weights([cast(w) for w in weights])
        m.compile(optimizer=K.optimizers.SGD(learning_rate=lr), loss="sparse_categorical_crossentropy")
        return [step_keras(m, cast(x_train[s * BATCH:(s + 1) * BATCH]), y_train[s * BATCH:(s + 1) * BATCH])
                for s in range(STEPS)]
    finally:
        set_floatx("float32")


def step_keras(model, xb, yb):
    out = model.train_on_batch(xb, yb, return_dict=True)
    return float(np.asarray(out["loss"]))


# ---------------------------------------------------------------------------------------- PyTorch
def torch_models():
    import torch
    import torch.nn as nn

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                       nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
            self.fc = nn.Linear(8 * 7 * 7, 10)

        def forward(self, x):
            x = self.stem(x.view(-1, 1, 28, 28))
            x = torch.relu(x + self.block(x))
            x = torch.max_pool2d(x, 4)
            # Flattened, not averaged: see the Keras ResNet.
            return self.fc(torch.flatten(x, 1))

    class LSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 24, batch_first=True)
            self.fc = nn.Linear(24, 10)

        def forward(self, x):
            out, _ = self.lstm(x.view(-1, 8, 8))
            return self.fc(out[:, -1])

    class Transformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(8, 16)
            self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.layer(self.embed(x.view(-1, 8, 8))).mean(dim=1))

    class Embedding(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(17, 4)
            self.fc = nn.Linear(64 * 4, 10)

        def forward(self, ids):
            return self.fc(torch.flatten(self.embed(ids), 1))

    return {"torch_resnet": (ResNet, "mnist_small", 2), "torch_lstm": (LSTM, "digits", 10),
            "torch_transformer": (Transformer, "digits", 10), "torch_embedding": (Embedding, "tokens", 10)}


def export_torch():
    import copy
    import onnx
    import torch
    import torch.nn.functional as F
    from export_models import ort_run, versions
    ver = versions()
    torch.set_num_threads(1)
    for name, (cls, kind, epochs) in torch_models().items():
        if ONLY and name not in ONLY:
            continue
        epochs = fit_epochs(name, epochs)
        torch.manual_seed(SEED)
        model = cls()
        (x_train, y_train), (x_test, y_test), _, _ = data(kind)
        path = f"{OUT}/{name}.onnx"
        example = torch.from_numpy(x_train[:2])
        batch = torch.export.Dim("batch")
        model.eval()
        arg = "ids" if kind == "tokens" else "x"
        if name == "torch_resnet":
            # The default (dynamo) exporter folds BatchNormalization into the convolutions in eval
            # mode; the legacy exporter keeps it when asked not to fold constants.
            torch.onnx.export(model, (example,), path, dynamo=False, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}}, do_constant_folding=False,
                              training=torch.onnx.TrainingMode.EVAL, opset_version=17)
        else:
            torch.onnx.export(model, (example,), path, dynamo=True, input_names=["input"], output_names=["logits"],
                              dynamic_shapes={arg: {0: batch}}, external_data=False, verbose=False)
        m = onnx.load(path)
        for node in m.graph.node:
            keep = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
        onnx.save(m, path)
        forward = ort_run(path, x_test[:8])
        with torch.no_grad():
            fw = model(torch.from_numpy(x_test[:8])).numpy()
        assert np.abs(fw - forward).max() < 1e-4, f"{name}: onnxruntime and PyTorch differ"
        # The framework's own steps (train mode: BatchNorm uses batch statistics).
        state = {k: v.clone() for k, v in model.state_dict().items()}
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=sgd_lr(name))
        losses = []
        for s in range(STEPS):
            xb = torch.from_numpy(x_train[s * BATCH:(s + 1) * BATCH])
            yb = torch.from_numpy(y_train[s * BATCH:(s + 1) * BATCH])
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.load_state_dict(state)
        model64 = copy.deepcopy(model).double()
        opt = torch.optim.SGD(model64.parameters(), lr=sgd_lr(name))
        losses64 = []
        for s in range(STEPS):
            xb = torch.from_numpy(x_train[s * BATCH:(s + 1) * BATCH])
            xb = xb.double() if xb.is_floating_point() else xb
            yb = torch.from_numpy(y_train[s * BATCH:(s + 1) * BATCH])
            opt.zero_grad()
            loss = F.cross_entropy(model64(xb), yb)
            loss.backward()
            opt.step()
            losses64.append(loss.item())
        opt = torch.optim.Adam(model.parameters(), lr=fit_lr(name), eps=1e-7)
        for _ in range(epochs):
            for s in range(0, len(x_train), BATCH):
                opt.zero_grad()
                F.cross_entropy(model(torch.from_numpy(x_train[s:s + BATCH])), torch.from_numpy(y_train[s:s + BATCH])).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
        how = ("torch.onnx.export(dynamo=False, do_constant_folding=False), eval mode (the dynamo default folds BatchNormalization)"
               if name == "torch_resnet" else "torch.onnx.export(dynamo=True), eval mode")
        sidecar(name, f"torch {ver.get('torch')}", how, kind, True, epochs,
                x_test, forward, losses, losses64, accuracy,
                {"bn_momentum": 0.9} if name == "torch_resnet" else {})  # PyTorch's momentum 0.1, as Keras writes it


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    ONLY = sys.argv[2:]  # optionally, the models to export
    {"tokens": write_tokens, "keras": export_keras, "torch": export_torch}[what]()
