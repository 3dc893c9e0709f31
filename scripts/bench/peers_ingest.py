"""The peers of `dhub ingest` on one CSV file, for BENCHMARKS.md: DuckDB and polars
each read the file, hash the five id columns, truncate START to the month and write
zstd Parquet, in one statement / one lazy query.

    python peers_ingest.py duckdb|polars encounters.csv OUT.parquet

DuckDB hashes with sha256(secret || value) (keyed by concatenation: it has no HMAC);
polars with its native 64-bit hash (fast, unkeyed, not a pseudonym scheme), as the
issue specifies. Prints one JSON line: tool, rows, seconds.
"""

import json
import sys
import time

IDS = ["Id", "PATIENT", "ORGANIZATION", "PROVIDER", "PAYER"]
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def run_duckdb(src, out):
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    cols = ", ".join(f"sha256('{SECRET}' || {c}) AS {c}" for c in IDS)
    t = time.perf_counter()
    con.execute(
        f"""COPY (
              SELECT {cols},
                     date_trunc('month', START) AS START,
                     STOP, ENCOUNTERCLASS, CODE, DESCRIPTION, BASE_ENCOUNTER_COST,
                     TOTAL_CLAIM_COST, PAYER_COVERAGE, REASONCODE, REASONDESCRIPTION
              FROM read_csv('{src}', header = true)
            ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"""
    )
    secs = time.perf_counter() - t
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return rows, secs


def run_polars(src, out):
    import polars as pl

    t = time.perf_counter()
    (
        pl.scan_csv(src, infer_schema_length=10000)
        .with_columns([pl.col(c).hash() for c in IDS])
        .with_columns(pl.col("START").str.to_datetime("%Y-%m-%dT%H:%M:%SZ").dt.truncate("1mo"))
        .sink_parquet(out, compression="zstd")
    )
    secs = time.perf_counter() - t
    rows = pl.scan_parquet(out).select(pl.len()).collect().item()
    return rows, secs


if __name__ == "__main__":
    tool, src, out = sys.argv[1:4]
    rows, secs = {"duckdb": run_duckdb, "polars": run_polars}[tool](src, out)
    print(json.dumps({"tool": tool, "rows": rows, "seconds": round(secs, 3)}))
