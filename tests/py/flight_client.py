"""Real Flight SQL clients against a live `dhub serve --flight-listen`: the ADBC Flight
SQL driver (dbapi), polars over ADBC, and pyarrow.flight for the raw protocol (app
metadata). Compares every answer and refusal with the HTTP API's.

    python flight_client.py GRPC_ADDR HTTP_BASE

Tokens come from the environment: DHUB_REC (record-mode project), DHUB_AGG
(aggregate mode), DHUB_NARROW (granted `patients` only). Prints a JSON summary; exits
non-zero on the first failed check."""

import json
import os
import sys
import urllib.error
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import polars as pl
import pyarrow.flight as fl

addr, http = sys.argv[1], sys.argv[2].rstrip("/")
REC, AGG, NARROW = os.environ["DHUB_REC"], os.environ["DHUB_AGG"], os.environ["DHUB_NARROW"]
uri = f"grpc://{addr}"
summary = {}


def http_query(token, sql):
    req = urllib.request.Request(
        f"{http}/v1/query",
        data=json.dumps({"sql": sql}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def http_tables(token):
    req = urllib.request.Request(f"{http}/v1/tables", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        return sorted(t["name"] for t in json.load(r)["tables"])


def connect(token=None, **kw):
    kwargs = {"adbc.flight.sql.authorization_header": f"Bearer {token}"} if token else {}
    kwargs.update(kw)
    return flight_sql.connect(uri, db_kwargs=kwargs)


def rows_of(table):
    return [list(r.values()) for r in table.to_pylist()]


def same(flight_rows, http_rows, what):
    norm = lambda rows: [[round(v, 6) if isinstance(v, float) else v for v in r] for r in rows]  # noqa: E731
    assert norm(flight_rows) == norm(http_rows), f"{what}: Flight {flight_rows[:5]} != HTTP {http_rows[:5]}"


# 1. record mode: tables, a query, polars, a prepared statement
with connect(REC) as conn:
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    names = sorted(t["table_name"] for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"])
    assert names == http_tables(REC), (names, http_tables(REC))
    summary["tables"] = len(names)
    schema = conn.adbc_get_table_schema("patients")
    assert "gender" in schema.names, schema
    sql = "SELECT gender, count(*) AS n FROM patients GROUP BY gender ORDER BY gender"
    with conn.cursor() as cur:
        cur.execute(sql)
        t = cur.fetch_arrow_table()
    same(rows_of(t), http_query(REC, sql)["rows"], "record query")
    df = pl.read_database(sql, connection=conn)
    assert df.height == t.num_rows and df.columns == ["gender", "n"], df
    summary["polars_rows"] = df.height
    big = "SELECT id, encounterclass, start FROM encounters ORDER BY id"
    with conn.cursor() as cur:
        cur.execute(big)
        t = cur.fetch_arrow_table()
    h = http_query(REC, "SELECT count(*) AS n FROM encounters")["rows"][0][0]
    assert t.num_rows == h, (t.num_rows, h)
    summary["encounters_rows"] = t.num_rows
    with conn.cursor() as cur:
        cur.adbc_prepare(sql)
        cur.execute(sql)
        p1 = rows_of(cur.fetch_arrow_table())
        cur.execute(sql)
        p2 = rows_of(cur.fetch_arrow_table())
    assert p1 == p2, (p1, p2)
    same(p1, http_query(REC, sql)["rows"], "prepared statement")

    # 2. refusals carry the HTTP message
    for bad in ["DROP TABLE patients", "SELECT * FROM '/etc/passwd'", "COPY patients TO '/tmp/x.csv'"]:
        msg = http_query(REC, bad)["error"]["message"]
        try:
            with conn.cursor() as cur:
                cur.execute(bad)
                cur.fetch_arrow_table()
            raise AssertionError(f"{bad} was not refused over Flight SQL")
        except adbc_driver_manager.Error as e:
            assert msg in str(e), f"{bad}: {e!s} does not carry {msg!r}"
    summary["refused"] = 3

# 3. aggregate mode: disclosure control applies; the answer equals HTTP's
sql = "SELECT race, ethnicity, count(*) AS n FROM patients GROUP BY race, ethnicity ORDER BY race, ethnicity"
with connect(AGG) as conn, conn.cursor() as cur:
    cur.execute(sql)
    agg = rows_of(cur.fetch_arrow_table())
    same(agg, http_query(AGG, sql)["rows"], "aggregate query")
    summary["aggregate_rows"] = len(agg)

# 4. a narrow project sees only its grant; another table is the same error as HTTP
with connect(NARROW) as conn:
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    names = sorted(t["table_name"] for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"])
    assert names == http_tables(NARROW) and "encounters" not in names, names
    msg = http_query(NARROW, "SELECT count(*) FROM encounters")["error"]["message"]
    try:
        conn.cursor().execute("SELECT count(*) FROM encounters")
        raise AssertionError("an ungranted table was readable over Flight SQL")
    except adbc_driver_manager.Error as e:
        assert msg in str(e), (str(e), msg)

# 5. bad and missing tokens fail; the handshake (username + token as password) works
for kw in [{"adbc.flight.sql.authorization_header": "Bearer dhub_not-a-token"}, {}]:
    try:
        with flight_sql.connect(uri, db_kwargs=kw) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetch_arrow_table()
        raise AssertionError(f"{kw} was accepted")
    except adbc_driver_manager.Error as e:
        assert "token" in str(e).lower() or "unauthenticated" in str(e).lower(), str(e)
with flight_sql.connect(uri, db_kwargs={"username": "rita", "password": REC}) as conn, conn.cursor() as cur:
    cur.execute("SELECT count(*) AS n FROM patients")
    summary["handshake_patients"] = cur.fetch_arrow_table().to_pylist()[0]["n"]


# 6. the raw protocol: the disclosure record is the FlightInfo's app metadata
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(num, payload):
    return bytes([num << 3 | 2]) + varint(len(payload)) + payload


def statement(sql):
    cmd = field(1, sql.encode())
    return field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") + field(2, cmd)


client = fl.FlightClient(uri)
opts = fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {AGG}".encode())])
info = client.get_flight_info(fl.FlightDescriptor.for_command(statement(sql)), opts)
disclosure = json.loads(info.app_metadata)
assert disclosure == http_query(AGG, sql)["disclosure"] or set(disclosure) == set(http_query(AGG, sql)["disclosure"]), disclosure
raw = client.do_get(info.endpoints[0].ticket, opts).read_all()
same(rows_of(raw), agg, "raw Flight")
# a ticket is fetched once, and only by its researcher
try:
    client.do_get(info.endpoints[0].ticket, opts).read_all()
    raise AssertionError("a ticket was fetched twice")
except (fl.FlightError, KeyError) as e:
    assert "ticket is unknown" in str(e), str(e)
# at most 4 answers wait per researcher: a fifth evicts the oldest
infos = [client.get_flight_info(fl.FlightDescriptor.for_command(statement(sql)), opts) for _ in range(5)]
try:
    client.do_get(infos[0].endpoints[0].ticket, opts).read_all()
    raise AssertionError("the oldest of five waiting answers was not evicted")
except (fl.FlightError, KeyError) as e:
    assert "ticket is unknown" in str(e), str(e)
for i in infos[1:]:
    same(rows_of(client.do_get(i.endpoints[0].ticket, opts).read_all()), agg, "waiting answer")
summary["disclosure_keys"] = sorted(disclosure)
print(json.dumps(summary))
