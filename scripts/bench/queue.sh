#!/usr/bin/env bash
# Concurrent researchers (BENCHMARKS.md, issue 17 item 14): a generated store of
# PATIENTS patients, an aggregate-mode project with 128 researchers, `dhub serve` with
# its default worker, per-researcher and queue settings (extra flags in SERVE_FLAGS),
# then 1, 8, 32 and 128 researchers at once, each sending a small aggregate query in a
# loop for DURATION seconds (scripts/bench/queue_load.py, Python standard library only).
# Only on 127.0.0.1.
#
#   scripts/bench/queue.sh [PATIENTS] [DURATION]        # defaults 10000, 15
#   SERVE_FLAGS='--queue 0' scripts/bench/queue.sh      # no queue: refuse when busy
#
# Needs a release build (cargo build --release -p dhub-cli) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
DHUB="$(realpath -m "${CARGO_TARGET_DIR:-target}/release/dhub")"
[ -x "$DHUB" ] || { echo "build first: cargo build --release -p dhub-cli" >&2; exit 1; }
PATIENTS="${1:-10000}"
DURATION="${2:-15}"
PORT="${PORT:-18182}"
DIR="${BENCH_DIR:-/tmp/dhub-bench}/queue-$PATIENTS"
mkdir -p "$DIR"
cd "$DIR"
if [ ! -f tokens ]; then
  rm -rf raw dhub-data dhub-keys
  "$DHUB" keys generate >/dev/null
  "$DHUB" synth --format synthea --patients "$PATIENTS" --seed 11 --out raw
  "$DHUB" ingest "$ROOT/pipelines/synthea.toml" --source raw
  rm -rf raw
  "$DHUB" release create bench
  "$DHUB" project create bench-agg --release bench --tables all
  for i in $(seq 128); do
    "$DHUB" researcher add "r$i" --project bench-agg
  done > tokens.new
  mv tokens.new tokens
fi
# every client comes from 127.0.0.1: room for 128 of them above the per-address cap
# shellcheck disable=SC2086
"$DHUB" serve --listen "127.0.0.1:$PORT" --views "$ROOT/sql/views" \
    --max-connections-per-address 512 ${SERVE_FLAGS:-} \
    > serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
echo "## $PATIENTS patients, ${DURATION} s per level, dhub serve ${SERVE_FLAGS:-(defaults)}"
python3 "$ROOT/scripts/bench/queue_load.py" "http://127.0.0.1:$PORT" tokens "$DURATION"
