# Sourced by the benchmark scripts: moves to the repository root and sets ROOT, DHUB (the
# release binary, under CARGO_TARGET_DIR when set) and PY (the test venv's Python, made
# by ./scripts/test; DHUB_PYTHON overrides). Stops with what to run when either is missing.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$(pwd)"
DHUB="$(realpath -m "${CARGO_TARGET_DIR:-target}/release/dhub")"
PY="${DHUB_PYTHON:-$HOME/.cache/dhub/venv/bin/python}"
[ -x "$DHUB" ] || { echo "build first: cargo build --release -p dhub-cli" >&2; exit 1; }
[ -x "$PY" ] || { echo "no Python venv at $PY: run ./scripts/test once (or set DHUB_PYTHON)" >&2; exit 1; }
