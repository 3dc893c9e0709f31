#!/usr/bin/env bash
# Query-service benchmarks (BENCHMARKS.md, issue 5): a generated store of PATIENTS
# patients, `dhub serve` over it, then
#   1. round trip of a small aggregate query over HTTP at 1, 8 and 32 concurrent
#      clients (wrk, from Debian's packages): p50 / p99, errors;
#   2. the research query set: dhub over HTTP vs DuckDB in-process on the same Parquet.
#
#   scripts/bench/serve.sh [PATIENTS]      # default 100000
#
# Needs a release build (cargo build --release -p dhub-cli), the test venv and wrk.
set -euo pipefail
source "$(dirname "$0")/common.sh"
PATIENTS="${1:-100000}"
DIR="${BENCH_DIR:-/tmp/dhub-bench}/serve-$PATIENTS"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
if [ ! -f dhub-data/store/_releases/bench.json ]; then
  rm -rf raw dhub-data dhub-keys
  "$DHUB" keys generate >/dev/null
  "$DHUB" synth --format synthea --patients "$PATIENTS" --seed 11 --out raw
  "$DHUB" ingest "$ROOT/pipelines/synthea.toml" --source raw
  rm -rf raw
  "$DHUB" release create bench
  "$DHUB" project create bench-rec --release bench --tables all --mode record --approved-by bench --reason benchmark
  "$DHUB" project create bench-agg --release bench --tables all
  "$DHUB" researcher add rec --project bench-rec > token-rec
  "$DHUB" researcher add agg --project bench-agg > token-agg
fi
"$DHUB" serve --listen 127.0.0.1:18181 --views "$ROOT/sql/views" --workers 32 --per-researcher 32 \
    --time-limit 600 > serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18181/healthz >/dev/null && break; sleep 0.2; done
TOKEN=$(cat token-rec)
cat > post.lua <<LUA
wrk.method = "POST"
wrk.body = '{"sql": "SELECT gender, count(*) AS n FROM patients GROUP BY gender"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
echo "## small aggregate query, $PATIENTS patients"
echo "| clients | requests/s | p50 ms | p99 ms | non-2xx |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for c in 1 8 32; do
  out=$(wrk -t "$(( c < 2 ? c : 2 ))" -c "$c" -d 20s --latency -s post.lua http://127.0.0.1:18181/v1/query)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "| $c | $rps | $p50 | $p99 | ${non2xx:-0} |"
done
echo
echo "## research query set (record mode), $PATIENTS patients"
"$PY" "$ROOT/scripts/bench/research_queries.py" "$DIR/dhub-data/store" http://127.0.0.1:18181 "$TOKEN" 11
if [ "${SDC:-}" = 1 ]; then
  echo
  echo "## the same in aggregate mode (disclosure control on)"
  "$PY" "$ROOT/scripts/bench/research_queries.py" "$DIR/dhub-data/store" http://127.0.0.1:18181 "$(cat token-agg)" 11
fi
