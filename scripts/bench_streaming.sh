#!/usr/bin/env bash
# Peak RSS and rows/s of one training epoch, in memory and streamed, on generated datasets of
# about 0.25, 1 and 4 GB (the digits rows repeated, plain-encoded Parquet in row groups of 65,536
# rows). Needs python3 with pyarrow (e.g. the oracle venv) and /usr/bin/time.
#
#   scripts/bench_streaming.sh [PYTHON] [SIZES_GB...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-/work/venv-oracle/bin/python}
shift || true
SIZES=${*:-0.25 1 4}
BIN=target/release/distk-gpu
DIR=$(mktemp -d /tmp/distk-stream-bench.XXXX)
trap 'rm -rf "$DIR"' EXIT
echo "size_gb,mode,rows,peak_rss_mb,rows_per_s,peak_resident_rows"
for gb in $SIZES; do
  data="$DIR/d$gb.parquet"
  "$PY" - "$data" "$gb" <<'PYEOF'
import sys
import pyarrow as pa
import pyarrow.parquet as pq
path, gb = sys.argv[1], float(sys.argv[2])
src = pq.read_table("examples/data/digits_train.parquet")
rows = int(gb * 1e9 / (64 * 4))
writer = pq.ParquetWriter(path, src.schema, use_dictionary=False, compression="none")
done = 0
while done < rows:
    take = min(src.num_rows, rows - done)
    writer.write_table(src.slice(0, take), row_group_size=65536)
    done += take
writer.close()
PYEOF
  rows=$("$PY" -c "import pyarrow.parquet as pq,sys; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)" "$data")
  for mode in memory streamed; do
    max=$([ "$mode" = memory ] && echo 100000000000 || echo 0)
    /usr/bin/time -f "%M" -o "$DIR/rss" "$BIN" run examples/models/keras_mlp.onnx --data "$data" --epochs 1 \
      --batch-size 256 --shuffle --device cpu --quiet --in-memory-max-bytes "$max" --shuffle-buffer 65536 \
      --out "$DIR/m.onnx" --history "$DIR/h.json" 2>/dev/null
    rss_kb=$(cat "$DIR/rss")
    stats=$("$PY" -c "import json,sys; h=json.load(open(sys.argv[1])); print(round(h['epochs'][0]['rows_per_s']), h.get('peak_resident_rows',''), sep=',')" "$DIR/h.json")
    echo "$gb,$mode,$rows,$((rss_kb / 1024)),$stats"
  done
  rm -f "$data"
done
