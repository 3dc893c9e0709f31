"""The research query set of BENCHMARKS.md (issues 5 and 6): five queries run through
`dhub serve` over HTTP and by DuckDB in-process on the same Parquet files (the active
files of the same Delta versions), in one run, median of N runs each.

    python research_queries.py STORE_ROOT URL TOKEN [RUNS] [--label NAME]

Prints a Markdown table: query, dhub ms, DuckDB ms, ratio; and checks the answers agree.
"""

import json
import statistics
import sys
import time
import urllib.request

import deltalake
import duckdb

QUERIES = [
    (
        "counts by class and year",
        "SELECT encounterclass, CAST(date_part('year', start) AS BIGINT) AS y, count(*) AS n FROM encounters GROUP BY 1, 2 ORDER BY 1, 2",
        None,
    ),
    (
        "distinct patients per code",
        "SELECT code, count(DISTINCT patient) AS people FROM conditions GROUP BY code ORDER BY people DESC, code LIMIT 50",
        None,
    ),
    (
        "patients join encounters",
        "SELECT p.gender, p.race, count(*) AS encounters, count(DISTINCT e.patient) AS people FROM patients p JOIN encounters e ON e.patient = p.id GROUP BY 1, 2 ORDER BY 1, 2",
        None,
    ),
    (
        "window and percentile",
        "SELECT encounterclass, n, rank() OVER (ORDER BY n DESC) AS r, med FROM (SELECT encounterclass, count(*) AS n, median(total_claim_cost) AS med FROM encounters GROUP BY encounterclass) ORDER BY r, encounterclass",
        None,
    ),
    (
        "a view (demographics)",
        "SELECT age_band, sex, count(*) AS n FROM demographics GROUP BY 1, 2 ORDER BY 1, 2",
        # DuckDB has no dhub views: the same view (sql/views/demographics.sql), written for DuckDB
        "SELECT CASE WHEN age >= 90 THEN '90+' WHEN age >= 0 THEN CASE CAST(floor(age / 10) AS INT) "
        "WHEN 0 THEN '0-9' WHEN 1 THEN '10-19' WHEN 2 THEN '20-29' WHEN 3 THEN '30-39' WHEN 4 THEN '40-49' "
        "WHEN 5 THEN '50-59' WHEN 6 THEN '60-69' WHEN 7 THEN '70-79' WHEN 8 THEN '80-89' END "
        "ELSE CAST(CAST(floor(age / 10) * 10 AS INT) AS VARCHAR) || '-' || CAST(CAST(floor(age / 10) * 10 + 9 AS INT) AS VARCHAR) END AS age_band, "
        "sex, count(*) AS n FROM (SELECT gender AS sex, "
        "CAST(floor(date_diff('day', birthdate, DATE '2026-01-01') / 365.25) AS INT) AS age FROM patients) "
        "GROUP BY 1, 2 ORDER BY 1, 2",
    ),
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
