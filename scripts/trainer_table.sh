#!/usr/bin/env bash
# The trainer table of BENCHMARKS.md: every trainer at 1, 2, 4 and 8 local workers on MNIST
# (keras_mlp_mnist, adam, batch 32, 1 epoch, seed 0, CPU executor), centre test accuracy and wall
# time. Usage: scripts/trainer_table.sh MNIST_TRAIN.parquet MNIST_TEST.parquet [BIN]
set -euo pipefail
train=${1:?MNIST train parquet}; test=${2:?MNIST test parquet}; bin=${3:-target/release/distk-gpu}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "| trainer | workers | test accuracy | wall s |"
echo "|---|---|---|---|"
start=$(date +%s.%N)
"$bin" run examples/models/keras_mlp_mnist.onnx --data "$train" --validation-data "$test" --epochs 1 --device cpu --quiet --out "$tmp/single.onnx" 2>"$tmp/log" || true
end=$(date +%s.%N)
acc=$(grep -oE "val_accuracy [0-9.]+" "$tmp/log" | tail -1 | awk '{print $2}')
echo "| single | 1 | $acc | $(echo "$end - $start" | bc) |"
for t in downpour agn adag dynsgd aeasgd eamsgd averaging ensemble; do
  for w in 1 2 4 8; do
    start=$(date +%s.%N)
    "$bin" run examples/models/keras_mlp_mnist.onnx --data "$train" --validation-data "$test" --epochs 1 --workers "$w" \
      --trainer "$t" --device cpu --quiet --out "$tmp/$t.onnx" 2>"$tmp/log" || true
    end=$(date +%s.%N)
    acc=$(grep -oE "val_accuracy [0-9.]+\)|prediction accuracy [0-9.]+" "$tmp/log" | tail -1 | grep -oE "[0-9]\.[0-9]+")
    echo "| $t | $w | ${acc:-failed: $(tail -1 "$tmp/log")} | $(echo "$end - $start" | bc) |"
  done
done
