#!/usr/bin/env bash
# Fault trials of real processes on loopback: a parameter server (`distk-gpu ps` with a checkpoint
# directory, so a write-ahead log) and worker processes (`distk-gpu worker --ack-log`) train the
# bundled digits model; at random moments the server or a random worker is killed with SIGKILL. A
# killed server is restarted with --resume on the same address; a killed worker is restarted with
# the same --worker-id half of the time (a new process taking the id over). Every trial is bounded
# in time. At the end of each trial the acknowledgements the workers logged are compared with what
# the server applied: an acknowledged commit whose sequence number the server never reached is lost.
#
# Usage: scripts/chaos.sh [TRIALS]   (default 5)
# Environment: DISTK_BIN (default target/release/distk-gpu), CHAOS_SEED (default: the time),
# CHAOS_WORKERS (3), CHAOS_EPOCHS (250), CHAOS_KILLS (kills per trial, 3), CHAOS_TRIAL_LIMIT
# (seconds before a trial counts as hung, 120), CHAOS_KEEP=1 keeps the trial folders.
# Prints one line per trial and the totals: trials, hangs, acknowledged commits, applied commits,
# clock, lost commits, time to resume (kill of the server to the first acknowledgement after its
# restart). Exits 1 when a commit was lost or a trial hung.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS="${1:-5}"
BIN="${DISTK_BIN:-target/release/distk-gpu}"
SEED="${CHAOS_SEED:-$(date +%s)}"
WORKERS="${CHAOS_WORKERS:-3}"
EPOCHS="${CHAOS_EPOCHS:-250}"
KILLS="${CHAOS_KILLS:-3}"
LIMIT="${CHAOS_TRIAL_LIMIT:-120}"
MODEL=examples/models/keras_mlp.onnx
DATA=examples/data/digits_train.parquet
[ -x "$BIN" ] || { echo "chaos: $BIN not found (build with cargo build --release, or set DISTK_BIN)" >&2; exit 2; }
RANDOM=$SEED
ROOT="$(mktemp -d "${TMPDIR:-/tmp}/distk-chaos.XXXXXX")"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    [ "${CHAOS_KEEP:-0}" = 1 ] || rm -rf "$ROOT"
}
trap cleanup EXIT
trap "exit 130" INT TERM
now_ms() { date +%s%3N; }
alive() { kill -0 "$1" 2>/dev/null; }
# A random number of milliseconds in [lo, hi).
rand_ms() { echo $(( $1 + (RANDOM * 32768 + RANDOM) % ($2 - $1) )); }
sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }

TOTAL_ACKED=0 TOTAL_APPLIED=0 TOTAL_LOST=0 HANGS=0 RESUMES=0 RESUME_MS_SUM=0 RESUME_MS_MAX=0 SERVER_KILLS=0 WORKER_KILLS=0
echo "chaos: $TRIALS trials, seed $SEED, $WORKERS workers, $EPOCHS epochs, $KILLS kills per trial, folder $ROOT"
for trial in $(seq 1 "$TRIALS"); do
    T="$ROOT/trial$trial"
    mkdir -p "$T"
    secret=$(printf '%064x' "$((SEED + trial))")
    printf '[{"secret": "%s", "identity": "chaos"}]' "$secret" > "$T/secrets.json"
    printf '%s\n' "$secret" > "$T/secret"
    ps_args=("$MODEL" --workers "$WORKERS" --secrets "$T/secrets.json" --trainer adag --epochs "$EPOCHS"
        --device cpu --checkpoint-dir "$T/ck" --checkpoint-every 200 --join-timeout 10
        --out "$T/centre.onnx" --history "$T/history.json")
    start_ps() { # $1: listen address, $2...: extra flags
        local listen=$1; shift
        "$BIN" ps "${ps_args[@]}" --listen "$listen" "$@" > "$T/ps.out" 2>> "$T/ps.err" &
        PS=$!
        PIDS+=("$PS")
    }
    start_ps 127.0.0.1:0
    t0=$(now_ms)
    while ! grep -q '^certificate sha256' "$T/ps.out" 2>/dev/null; do
        alive "$PS" || { echo "chaos: the parameter server did not start:"; cat "$T/ps.err"; exit 2; }
        [ $(( $(now_ms) - t0 )) -lt 30000 ] || { echo "chaos: the parameter server did not listen in 30 s"; exit 2; }
        sleep 0.05
    done
    ADDR=$(sed -n 's/^listening on //p' "$T/ps.out")
    SHA=$(sed -n 's/^certificate sha256 //p' "$T/ps.out")
    declare -A WPID=()
    declare -A WRUN=()
    start_worker() { # $1: worker id
        local i=$1 n=$(( ${WRUN[$1]:-0} + 1 ))
        WRUN[$i]=$n
        "$BIN" worker --connect "$ADDR" --secret-file "$T/secret" --server-cert-sha256 "$SHA" \
            --data "$DATA" --shard "$i/$WORKERS" --worker-id "$i" --device cpu --reconnect-timeout 60 \
            --ack-log "$T/acks-$i-$n.log" > /dev/null 2> "$T/worker-$i-$n.err" &
        WPID[$i]=$!
        PIDS+=("${WPID[$i]}")
    }
    for i in $(seq 0 $((WORKERS - 1))); do start_worker "$i"; done
    kills=0 server_kills=0 worker_kills=0
    : > "$T/restarts"
    while [ "$kills" -lt "$KILLS" ] && alive "$PS"; do
        sleep_ms "$(rand_ms 200 1500)"
        alive "$PS" || break
        if [ $((RANDOM % 2)) = 0 ]; then
            kill -9 "$PS" 2>/dev/null || true
            wait "$PS" 2>/dev/null || true
            killed_at=$(now_ms)
            sleep_ms "$(rand_ms 50 1000)"
            start_ps "$ADDR" --resume
            echo "$killed_at" >> "$T/restarts"
            server_kills=$((server_kills + 1))
        else
            i=$((RANDOM % WORKERS))
            if alive "${WPID[$i]}"; then
                kill -9 "${WPID[$i]}" 2>/dev/null || true
                wait "${WPID[$i]}" 2>/dev/null || true
                worker_kills=$((worker_kills + 1))
                if [ $((RANDOM % 2)) = 0 ]; then start_worker "$i"; fi
            fi
        fi
        kills=$((kills + 1))
    done
    # The run ends on its own (every worker done, or lost and given up); bounded by the limit.
    hung=0
    t0=$(now_ms)
    while alive "$PS"; do
        if [ $(( $(now_ms) - t0 )) -gt $((LIMIT * 1000)) ]; then hung=1; break; fi
        sleep 0.1
    done
    ps_status=0
    if [ "$hung" = 1 ]; then
        HANGS=$((HANGS + 1))
        kill -9 "$PS" 2>/dev/null || true
    else
        wait "$PS" || ps_status=$?
    fi
    for i in "${!WPID[@]}"; do
        if alive "${WPID[$i]}"; then
            sleep 5
            alive "${WPID[$i]}" && { kill -9 "${WPID[$i]}" 2>/dev/null || true; }
        fi
        wait "${WPID[$i]}" 2>/dev/null || true
    done
    unset WPID WRUN
    # What the server applied: "worker I STATUS: N commits applied, last sequence number S".
    grep -h '^worker [0-9]* .*commits applied' "$T/ps.err" | tail -n "$WORKERS" > "$T/applied" || true
    clock=$(sed -n 's/^parameter server: clock \([0-9]*\).*/\1/p' "$T/ps.err" | tail -n 1)
    cat "$T"/acks-*.log 2>/dev/null | sort -u -k2,2n -k3,3n > "$T/acked" || true
    read -r acked applied lost <<< "$(awk '
        FNR == NR { for (k = 1; k <= NF; k++) if ($k == "sequence") { last[$2] = $(k + 2) + 0 }
                    for (k = 1; k <= NF; k++) if ($k == "commits" && $(k + 1) == "applied,") applied += $(k - 1)
                    next }
        { acked++; if (!($2 in last) || $3 + 0 > last[$2]) lost++ }
        END { printf "%d %d %d\n", acked, applied, lost }' "$T/applied" "$T/acked")"
    # Time to resume: a server kill to the first acknowledgement logged after its restart.
    resume_ms=$(awk 'FNR == NR { k[++n] = $1; next } { t[++m] = $1 }
        END { for (i = 1; i <= n; i++) { best = -1
                  for (j = 1; j <= m; j++) if (t[j] > k[i] && (best < 0 || t[j] < best)) best = t[j]
                  if (best > 0) { s += best - k[i]; c++; if (best - k[i] > mx) mx = best - k[i] } }
              printf "%d %d %d\n", c, s, mx }' "$T/restarts" <(cut -d' ' -f1 "$T/acked" | sort -n))
    read -r rc rs rmax <<< "$resume_ms"
    RESUMES=$((RESUMES + rc)) RESUME_MS_SUM=$((RESUME_MS_SUM + rs))
    [ "$rmax" -gt "$RESUME_MS_MAX" ] && RESUME_MS_MAX=$rmax
    TOTAL_ACKED=$((TOTAL_ACKED + acked)) TOTAL_APPLIED=$((TOTAL_APPLIED + applied)) TOTAL_LOST=$((TOTAL_LOST + lost))
    SERVER_KILLS=$((SERVER_KILLS + server_kills)) WORKER_KILLS=$((WORKER_KILLS + worker_kills))
    recoveries=$(grep -c '^resumed from' "$T/ps.err" || true)
    echo "trial $trial: server kills $server_kills (recoveries $recoveries), worker kills $worker_kills," \
        "hung $hung, ps exit $ps_status, acknowledged $acked, applied $applied, clock ${clock:-?}, lost $lost"
    if [ "$lost" -gt 0 ] || [ "$hung" = 1 ] || [ -z "$clock" ]; then
        echo "--- trial $trial: parameter server log (tail)"; tail -n 30 "$T/ps.err"
        CHAOS_KEEP=1
    fi
done
avg=0
[ "$RESUMES" -gt 0 ] && avg=$((RESUME_MS_SUM / RESUMES))
echo "chaos: trials $TRIALS, hangs $HANGS, server kills $SERVER_KILLS, worker kills $WORKER_KILLS," \
    "acknowledged commits $TOTAL_ACKED, applied commits $TOTAL_APPLIED, lost commits $TOTAL_LOST," \
    "time to resume ${avg} ms mean / ${RESUME_MS_MAX} ms max over $RESUMES restarts"
[ "$TOTAL_LOST" = 0 ] && [ "$HANGS" = 0 ]
