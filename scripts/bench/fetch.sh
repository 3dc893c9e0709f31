#!/usr/bin/env bash
# Fetching a 1,000,000-row record-mode result: Flight SQL vs HTTP Arrow IPC vs HTTP JSON
# (BENCHMARKS.md, issue 8), on the store scripts/bench/serve.sh generates.
#
#   scripts/bench/fetch.sh [PATIENTS]      # default 100000 (run serve.sh first)
#
# Needs a release build (cargo build --release -p dhub-cli) and the test venv.
set -euo pipefail
source "$(dirname "$0")/common.sh"
PATIENTS="${1:-100000}"
DIR="${BENCH_DIR:-/tmp/dhub-bench}/serve-$PATIENTS"
[ -f "$DIR/token-rec" ] || { echo "run scripts/bench/serve.sh $PATIENTS first" >&2; exit 1; }
cd "$DIR"
"$DHUB" serve --listen 127.0.0.1:18181 --flight-listen 127.0.0.1:18182 --views "$ROOT/sql/views" \
    --workers 4 --time-limit 600 --max-bytes 2048 > serve-fetch.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18181/healthz >/dev/null && break; sleep 0.2; done
echo "## 1,000,000-row record-mode result, $PATIENTS patients"
"$PY" "$ROOT/scripts/bench/fetch.py" 127.0.0.1:18182 http://127.0.0.1:18181 "$(cat token-rec)" 3
