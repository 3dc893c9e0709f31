"""The research query set of BENCHMARKS.md (issues 5 and 6): five queries run through
`dhub serve` over HTTP and by DuckDB in-process on the same Parquet files (the active
files of the same Delta versions), in one run, median of N runs each.

    python research_queries.py STORE_ROOT URL TOKEN [RUNS] [--label NAME]

Prints a Markdown table: query, dhub ms, DuckDB ms, ratio; and checks the answers agree.
"""

import json
import pathlib
import statistics
import sys
import time
import urllib.request

import deltalake
import duckdb

# The query set, shared with `cargo run -p dhub-query --example research_set`: name, SQL
# for dhub, and (where dhub's views do not exist in DuckDB) the same query for DuckDB.
QUERIES = [
    (q["name"], q["sql"], q.get("duckdb_sql"))
    for q in json.loads((pathlib.Path(__file__).parent / "research_queries.json").read_text())
]


def dhub(url, token, sql):
    req = urllib.request.Request(
        f"{url}/v1/query",
        data=json.dumps({"sql": sql}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)["rows"]


def norm(rows):
    out = []
    for r in rows:
        out.append([round(float(v), 4) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in r])
    return out


def main(argv):
    root, url, token = argv[:3]
    runs = int(argv[3]) if len(argv) > 3 and not argv[3].startswith("--") else 5
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    for t in ["patients", "encounters", "conditions"]:
        files = deltalake.DeltaTable(f"{root}/{t}").file_uris()
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet({files!r})")
    print("| query | dhub over HTTP, ms | DuckDB in-process, ms | dhub / DuckDB |")
    print("| --- | ---: | ---: | ---: |")
    for name, sql, duck_sql in QUERIES:
        duck_sql = duck_sql or sql
        a = dhub(url, token, sql)  # warm-up, and the answer
        b = con.execute(duck_sql).fetchall()
        if norm(a) != norm([list(x) for x in b]):
            print(f"WARNING: answers differ for {name}", file=sys.stderr)
        td, tk = [], []
        for _ in range(runs):
            t = time.perf_counter()
            dhub(url, token, sql)
            td.append(time.perf_counter() - t)
            t = time.perf_counter()
            con.execute(duck_sql).fetchall()
            tk.append(time.perf_counter() - t)
        d, k = statistics.median(td) * 1000, statistics.median(tk) * 1000
        print(f"| {name} | {d:.0f} | {k:.0f} | {d / k:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
