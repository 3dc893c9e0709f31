"""Flight SQL authentication attempts against a live `dhub serve --flight-listen`.

    python flight_auth.py ADDR TOKEN N

Makes N handshakes (HTTP Basic credentials whose password is TOKEN, what ADBC and JDBC
send) with pyarrow.flight, one connection each, and prints one JSON line per attempt:
{"ok": bool, "error": exception class or null, "message": str}."""

import json
import sys

import pyarrow.flight as fl

addr, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(n):
    client = fl.FlightClient(f"grpc://{addr}")
    try:
        client.authenticate_basic_token("researcher", token)
        print(json.dumps({"ok": True, "error": None, "message": ""}))
    except Exception as e:  # noqa: BLE001 - every failure is reported, by class
        print(json.dumps({"ok": False, "error": type(e).__name__, "message": str(e)}))
    finally:
        client.close()
