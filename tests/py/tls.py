"""TLS helpers for the server tests.

    python tls.py make DIR                      # ca.pem, server.pem, server.key for 127.0.0.1
    python tls.py query CA_PEM URL TOKEN SQL    # POST /v1/query over HTTPS, verifying the CA
    python tls.py flight CA_PEM ADDR TOKEN SQL  # the same over Flight SQL with TLS (ADBC)

Certificates come from `trustme` (a throwaway CA); the client is the standard library's
urllib with an SSL context that trusts only that CA. Prints {"status", "body"} as JSON.
"""

import json
import ssl
import sys
import urllib.error
import urllib.request


def make(d):
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(f"{d}/ca.pem")
    cert.private_key_pem.write_to_path(f"{d}/server.key")
    cert.cert_chain_pems[0].write_to_path(f"{d}/server.pem")
    with open(f"{d}/server.pem", "ab") as f:
        for extra in cert.cert_chain_pems[1:]:
            f.write(extra.bytes())


def query(ca, url, token, sql):
    ctx = ssl.create_default_context(cafile=ca)
    req = urllib.request.Request(
        f"{url}/v1/query",
        data=json.dumps({"sql": sql}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=120) as r:
            print(json.dumps({"status": r.status, "body": json.load(r)}))
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code, "body": json.load(e)}))


def flight(ca, addr, token, sql):
    import adbc_driver_flightsql.dbapi as flight_sql

    kwargs = {
        "adbc.flight.sql.authorization_header": f"Bearer {token}",
        "adbc.flight.sql.client_option.tls_root_certs": open(ca).read(),
    }
    with flight_sql.connect(f"grpc+tls://{addr}", db_kwargs=kwargs) as c, c.cursor() as cur:
        cur.execute(sql)
        print(json.dumps({"rows": [list(r.values()) for r in cur.fetch_arrow_table().to_pylist()]}))


if __name__ == "__main__":
    {"make": make, "query": query, "flight": flight}[sys.argv[1]](*sys.argv[2:])
