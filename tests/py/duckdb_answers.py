"""DuckDB's answers to research queries over the same Parquet files dhub serves: the
active data files of each Delta table (read with the `deltalake` package) become DuckDB
views, then each query runs in DuckDB.

    python duckdb_answers.py STORE_ROOT TABLE ... < queries.json

queries.json: [{"name": ..., "sql": ...}, ...]. Prints {name: rows}, rows as lists with
numbers as floats, so they compare with dhub's JSON answers.
"""

import datetime
import decimal
import json
import sys

import deltalake
import duckdb


def norm(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return str(v)


def main(root, tables):
    con = duckdb.connect()
    for t in tables:
        files = deltalake.DeltaTable(f"{root}/{t}").file_uris()
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet({files!r})")
    out = {}
    for q in json.load(sys.stdin):
        rows = con.execute(q["sql"]).fetchall()
        out[q["name"]] = [[norm(v) for v in r] for r in rows]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
