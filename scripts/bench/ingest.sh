#!/usr/bin/env bash
# Ingest benchmark (BENCHMARKS.md): dhub vs DuckDB vs polars on the same generated
# Synthea encounters.csv, all in one run, plus dhub's peak RSS at 1M and full size.
#
#   scripts/bench/ingest.sh [PATIENTS]     # default 230000 patients (about 5.4M encounters)
#
# Needs: a release build (cargo build --release -p dhub-cli) and the test venv
# (./scripts/test makes it; DHUB_PYTHON overrides). Work files go to $BENCH_DIR
# (default /tmp/dhub-bench; the full sample is about 30 GB while it is generated).
set -euo pipefail
source "$(dirname "$0")/common.sh"
PATIENTS="${1:-230000}"
DIR="${BENCH_DIR:-/tmp/dhub-bench}"
mkdir -p "$DIR"
SRC="$DIR/src"
if [ ! -s "$SRC/encounters.csv" ]; then
  rm -rf "$DIR/synth"
  "$DHUB" synth --format synthea --patients "$PATIENTS" --seed 42 --out "$DIR/synth"
  mkdir -p "$SRC" "$DIR/src1m"
  mv "$DIR/synth/encounters.csv" "$SRC/encounters.csv"
  rm -rf "$DIR/synth"
  head -n 1000001 "$SRC/encounters.csv" > "$DIR/src1m/encounters.csv"
fi
ROWS=$(($(wc -l < "$SRC/encounters.csv") - 1))
BYTES=$(stat -c %s "$SRC/encounters.csv")
echo "input: $ROWS rows, $BYTES bytes"

cd "$DIR"
[ -f key ] || "$DHUB" keys generate --out key >/dev/null
measure() { # name, command...: wall seconds and peak RSS (kB)
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "time-$name" "$@" > "out-$name" 2> "err-$name"
  read -r secs rss < "time-$name"
  echo "$name $secs $rss"
}
D="$DHUB"
SPEC="$ROOT/scripts/bench/encounters.toml"
rm -rf store1m store quarantine peer-*.parquet
measure dhub-1m "$D" --key key --store file://./store1m ingest "$SPEC" --source src1m --quarantine file://./quarantine
measure dhub "$D" --key key --store file://./store ingest "$SPEC" --source src --quarantine file://./quarantine
measure duckdb "$PY" "$ROOT/scripts/bench/peers_ingest.py" duckdb src/encounters.csv peer-duckdb.parquet
measure polars "$PY" "$ROOT/scripts/bench/peers_ingest.py" polars src/encounters.csv peer-polars.parquet
"$PY" - "$ROWS" "$BYTES" <<'PY'
import sys
rows, size = int(sys.argv[1]), int(sys.argv[2])
r = {}
for name in ["dhub-1m", "dhub", "duckdb", "polars"]:
    secs, rss = open(f"time-{name}").read().split()
    r[name] = (float(secs), int(rss))
print(f"| tool | rows | seconds | rows/s | MB/s | peak RSS |")
print(f"| --- | ---: | ---: | ---: | ---: | ---: |")
for name in ["dhub", "duckdb", "polars"]:
    s, m = r[name]
    print(f"| {name} | {rows} | {s:.1f} | {rows/s:,.0f} | {size/s/1e6:.0f} | {m/1024:.0f} MiB |")
d = r["dhub"][0]
print(f"\ndhub vs DuckDB: {r['duckdb'][0]/d:.2f}x; dhub vs polars: {r['polars'][0]/d:.2f}x")
print(f"dhub peak RSS: {r['dhub-1m'][1]/1024:.0f} MiB at 1,000,000 rows, {r['dhub'][1]/1024:.0f} MiB at {rows:,} rows")
PY
