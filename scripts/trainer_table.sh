#!/usr/bin/env bash
# The trainer table of BENCHMARKS.md: every trainer at 1, 2, 4 and 8 local workers on MNIST
# (keras_mlp_mnist, adam at its default rate, batch 32, seed 0, each trainer's default window, CPU
# executor), 10 epochs with the centre validated after each: test accuracy after epochs 1 and 5,
# and the server updates (clock) and wall seconds until the first epoch whose test accuracy is
# >= 0.97 ("not reached" within 10 epochs). Ensemble has no centre: its row is the accuracy of the
# members' averaged prediction after the 10 epochs. Wall seconds are the training's own (from the
# history: loading and writing excluded).
# Usage: scripts/trainer_table.sh MNIST_TRAIN.parquet MNIST_TEST.parquet [BIN] [EPOCHS]
set -euo pipefail
train=${1:?MNIST train parquet}; test=${2:?MNIST test parquet}
bin=${3:-target/release/distk-gpu}; epochs=${4:-10}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "| trainer | workers | test accuracy after epoch 1 | after epoch 5 | epoch reaching 0.97 | server updates until then | wall s until then | wall s of the run |"
echo "|---|---|---|---|---|---|---|---|"
row() { # trainer workers
  local t=$1 w=$2 args=(--workers "$2")
  [ "$t" = single ] || args+=(--trainer "$t")
  if ! "$bin" run examples/models/keras_mlp_mnist.onnx --data "$train" --validation-data "$test" \
      --epochs "$epochs" --seed 0 --device cpu --quiet --out "$tmp/$t.onnx" \
      --history "$tmp/h.json" "${args[@]}" 2>"$tmp/log"; then
    echo "| $t | $w | failed: $(tail -1 "$tmp/log") | | | | | |"
    return
  fi
  python3 - "$tmp/h.json" "$t" "$w" <<'EOF'
import json, sys
h = json.load(open(sys.argv[1]))
t, w = sys.argv[2], sys.argv[3]
if t == "ensemble":
    acc = h["ensemble_validation"]["accuracy"]
    print(f"| {t} | {w} | | | averaged prediction after all epochs: {acc:.4f} | | | {h['seconds']:.1f} |")
    sys.exit()
eps = h["epochs"]
if t == "single":  # the single trainer's history: val_* keys; its updates are its steps
    for e in eps:
        last = [s for s in h["steps"] if s["epoch"] == e["epoch"]][-1]
        e.update(accuracy=e["val_accuracy"], clock=last["step"] + 1, time=last["time"])
    h["seconds"] = eps[-1]["time"]
acc = lambda i: f"{eps[i]['accuracy']:.4f}" if len(eps) > i else "-"
hit = next((e for e in eps if e["accuracy"] >= 0.97), None)
reach = f"{hit['epoch'] + 1} | {hit['clock']} | {hit['time']:.1f}" if hit else "not reached | - | -"
print(f"| {t} | {w} | {acc(0)} | {acc(4)} | {reach} | {h['seconds']:.1f} |")
EOF
}
row single 1
for t in downpour agn adag dynsgd aeasgd eamsgd averaging ensemble; do
  for w in 1 2 4 8; do row "$t" "$w"; done
done
