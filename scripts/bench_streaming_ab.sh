#!/bin/bash
# In-memory against streamed training on one generated file (GB gigabytes, default 4), ROUNDS
# interleaved rounds (default 3): on a noisy VM only back-to-back pairs compare. Needs pyarrow.
#   scripts/bench_streaming_ab.sh [PYTHON] [GB] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}; GB=${2:-4}; ROUNDS=${3:-3}
D=$(mktemp -d /tmp/distk-ab.XXXX); trap 'rm -rf "$D"' EXIT
"$PY" - $D/d.parquet $GB <<'PYEOF'
import sys, pyarrow as pa, pyarrow.parquet as pq
path, gb = sys.argv[1], float(sys.argv[2])
src = pq.read_table("examples/data/digits_train.parquet")
rows = int(gb * 1e9 / (64 * 4))
w = pq.ParquetWriter(path, src.schema, use_dictionary=False, compression="none")
done = 0
while done < rows:
    take = min(src.num_rows, rows - done); w.write_table(src.slice(0, take), row_group_size=65536); done += take
w.close()
PYEOF
for rep in $(seq "$ROUNDS"); do
for mode in memory streamed; do
  max=$([ $mode = memory ] && echo 100000000000 || echo 0)
  /usr/bin/time -f %M -o $D/rss target/release/distk-gpu run examples/models/keras_mlp.onnx --data $D/d.parquet --epochs 1 --batch-size 256 --shuffle --device cpu --quiet --in-memory-max-bytes $max --shuffle-buffer 65536 --out $D/m.onnx --history $D/h.json 2>/dev/null
  echo "$rep,$mode,$(( $(cat $D/rss) / 1024 )),$("$PY" -c "import json; h=json.load(open('$D/h.json')); print(round(h['epochs'][0]['rows_per_s']), h.get('peak_resident_rows',''), sep=',')")"
done; done

