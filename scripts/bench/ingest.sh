#!/usr/bin/env bash
# Ingest benchmark (BENCHMARKS.md): dhub vs DuckDB vs polars on the same generated
# Synthea encounters.csv, all in one run (RUNS rounds, default 3, each tool once per
# round; medians and every run reported), plus dhub's peak RSS at 1M and full size.
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
measure() { # name, command...: wall seconds and peak RSS (kB), appended to runs-NAME
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "time-$name" "$@" > "out-$name" 2> "err-$name"
  read -r secs rss < "time-$name"
  echo "$secs $rss" >> "runs-$name"
  echo "$name $secs $rss"
}
D="$DHUB"
SPEC="$ROOT/scripts/bench/encounters.toml"
# RUNS rounds (default 3), each tool once per round in the same order; the figures are
# each tool's median, and every run is printed. Single runs on a shared 2-vCPU machine
# vary by 5-10% (more when the host is busy), which a median of three absorbs.
RUNS="${RUNS:-3}"
rm -rf store1m store quarantine peer-*.parquet runs-*
for round in $(seq "$RUNS"); do
  echo "round $round of $RUNS"
  rm -rf store1m store quarantine
  measure dhub-1m "$D" --key key --store file://./store1m ingest "$SPEC" --source src1m --quarantine file://./quarantine
  measure dhub "$D" --key key --store file://./store ingest "$SPEC" --source src --quarantine file://./quarantine
  measure duckdb "$PY" "$ROOT/scripts/bench/peers_ingest.py" duckdb src/encounters.csv peer-duckdb.parquet
  measure polars "$PY" "$ROOT/scripts/bench/peers_ingest.py" polars src/encounters.csv peer-polars.parquet
done
"$PY" - "$ROWS" "$BYTES" <<'PY'
import statistics, sys
rows, size = int(sys.argv[1]), int(sys.argv[2])
runs = {}
for name in ["dhub-1m", "dhub", "duckdb", "polars"]:
    runs[name] = [(float(a), int(b)) for a, b in (l.split() for l in open(f"runs-{name}"))]
med = {n: statistics.median(s for s, _ in r) for n, r in runs.items()}
peak = {n: max(m for _, m in r) for n, r in runs.items()}
print(f"| tool | rows | seconds (median of {len(runs['dhub'])}) | rows/s | MB/s | peak RSS (max) |")
print(f"| --- | ---: | ---: | ---: | ---: | ---: |")
for name in ["dhub", "duckdb", "polars"]:
    s, m = med[name], peak[name]
    print(f"| {name} | {rows} | {s:.2f} | {rows/s:,.0f} | {size/s/1e6:.0f} | {m/1024:.0f} MiB |")
print("\n| round | dhub | DuckDB | polars | dhub vs DuckDB | dhub vs polars | dhub RSS 1M / full |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for i, (d, k, p, m1) in enumerate(zip(runs["dhub"], runs["duckdb"], runs["polars"], runs["dhub-1m"]), 1):
    print(f"| {i} | {d[0]:.2f} s | {k[0]:.2f} s | {p[0]:.2f} s | {k[0]/d[0]:.2f}x | {p[0]/d[0]:.2f}x "
          f"| {m1[1]/1024:.0f} / {d[1]/1024:.0f} MiB |")
d = med["dhub"]
print(f"\nmedians: dhub vs DuckDB: {med['duckdb']/d:.2f}x; dhub vs polars: {med['polars']/d:.2f}x")
print(f"dhub peak RSS: {peak['dhub-1m']/1024:.0f} MiB at 1,000,000 rows, {peak['dhub']/1024:.0f} MiB at {rows:,} rows")
PY
