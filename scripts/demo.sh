#!/usr/bin/env bash
# The main job on bundled data: train a Keras-exported MLP (examples/models/keras_mlp.onnx, exported
# by tf2onnx from Keras 3) on the sklearn digits (examples/data/digits_train.parquet) with a
# parameter server and 4 workers (ADAG, QUIC over loopback), validating the centre on the test split
# after every epoch, then evaluate the trained ONNX file and predict with it. Runs on the GPU
# executor (lavapipe where there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p distk-gpu
BIN=target/release/distk-gpu
mkdir -p out
$BIN devices
$BIN run examples/models/keras_mlp.onnx --data examples/data/digits_train.parquet --workers 4 \
    --validation-data examples/data/digits_test.parquet --epochs 30 --shuffle --learning-rate 0.003 \
    --device wgpu --out out/keras_mlp.trained.onnx --history out/history.json
$BIN evaluate out/keras_mlp.trained.onnx --data examples/data/digits_test.parquet
$BIN predict out/keras_mlp.trained.onnx --data examples/data/digits_test.parquet \
    --out out/digits_predictions.parquet --device wgpu
echo "demo: trained model out/keras_mlp.trained.onnx, history out/history.json, predictions out/digits_predictions.parquet"
