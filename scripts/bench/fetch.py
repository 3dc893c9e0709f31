"""Fetching a 1,000,000-row record-mode result three ways (BENCHMARKS.md, issue 8):
Arrow Flight SQL (ADBC driver), HTTP with Arrow IPC, HTTP with JSON; rows/s each,
median of RUNS after a warm-up, one run of this script.

    python fetch.py GRPC_ADDR HTTP_BASE TOKEN [RUNS]
"""

import io
import json
import statistics
import sys
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow.ipc as ipc

addr, http, token = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
SQL = (
    "SELECT id, start, patient, organization, encounterclass, code, description, "
    "base_encounter_cost, total_claim_cost FROM encounters LIMIT 1000000"
)


def http_post(fmt):
    req = urllib.request.Request(
        f"{http}/v1/query",
        data=json.dumps({"sql": SQL, "format": fmt}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read()


def via_flight():
    with flight_sql.connect(f"grpc://{addr}", db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"}) as c:
        with c.cursor() as cur:
            cur.execute(SQL)
            return cur.fetch_arrow_table().num_rows


def via_arrow():
    return ipc.open_stream(io.BytesIO(http_post("arrow"))).read_all().num_rows


def via_json():
    return len(json.loads(http_post("json"))["rows"])


print("| client | rows | seconds (median) | rows/s |")
print("| --- | ---: | ---: | ---: |")
for name, f in [("Flight SQL (ADBC)", via_flight), ("HTTP, Arrow IPC", via_arrow), ("HTTP, JSON", via_json)]:
    rows = f()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        assert f() == rows
        times.append(time.perf_counter() - t)
    s = statistics.median(times)
    print(f"| {name} | {rows:,} | {s:.2f} | {rows / s:,.0f} |")
