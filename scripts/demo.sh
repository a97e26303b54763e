#!/usr/bin/env bash
# The main job on bundled data: a Keras-exported MLP (examples/models/keras_mlp.onnx, exported by
# tf2onnx from Keras 3) runs over the sklearn digits test set (examples/data/digits_test.parquet)
# on the GPU executor (lavapipe where there is no GPU), and its predictions are written as Parquet.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p distk-gpu
BIN=target/release/distk-gpu
mkdir -p out
$BIN devices
$BIN inspect examples/models/keras_mlp.onnx
$BIN predict examples/models/keras_mlp.onnx --data examples/data/digits_test.parquet \
    --out out/digits_predictions.parquet --device wgpu
echo "demo: predictions written to out/digits_predictions.parquet"
