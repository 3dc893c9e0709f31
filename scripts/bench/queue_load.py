#!/usr/bin/env python3
"""Concurrent researchers against one `dhub serve` (BENCHMARKS.md, issue 17 item 14).

Each of N clients is a different researcher (its own token) sending the same small
aggregate query in a loop, one at a time, over a kept-alive HTTP connection, for
DURATION seconds; N is 1, 8, 32 and 128 by default. Prints one Markdown table row per
level: answers per second, p50 and p99 latency of the answered queries, the share of
429 refusals and of other errors. Standard library only.

    queue_load.py BASE_URL TOKENS_FILE [DURATION] [LEVELS]   # LEVELS like 1,8,32,128
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse

SQL = "SELECT gender, count(*) AS n FROM patients GROUP BY gender"


def client(base, token, stop_at, out):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    body = json.dumps({"sql": SQL})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        try:
            conn.request("POST", "/v1/query", body, headers)
            r = conn.getresponse()
            r.read()
            status = r.status
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        out.append((status, time.monotonic() - t0))
        if status == 429:
            # a polite client: what Retry-After asks, capped
            time.sleep(0.05)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def level(base, tokens, n, duration):
    stop_at = time.monotonic() + duration
    outs = [[] for _ in range(n)]
    threads = [
        threading.Thread(target=client, args=(base, tokens[i], stop_at, outs[i]))
        for i in range(n)
    ]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    allr = [x for o in outs for x in o]
    ok = [lat for s, lat in allr if s == 200]
    busy = sum(1 for s, _ in allr if s == 429)
    other = len(allr) - len(ok) - busy
    served = sum(1 for o in outs if any(s == 200 for s, _ in o))
    return (
        f"| {n} | {len(ok) / took:.0f} | {pct(ok, 50) * 1000:.1f} ms | "
        f"{pct(ok, 99) * 1000:.1f} ms | {100 * busy / max(1, len(allr)):.1f}% | "
        f"{other} | {served}/{n} |"
    )


def main():
    base, tokens_file = sys.argv[1], sys.argv[2]
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 15
    levels = [int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "1,8,32,128").split(",")]
    tokens = [t.strip() for t in open(tokens_file) if t.strip()]
    assert len(tokens) >= max(levels), f"{tokens_file} has {len(tokens)} tokens"
    print("| researchers | answers/s | p50 | p99 | 429s | other errors | researchers served |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in levels:
        print(level(base, tokens, n, duration), flush=True)


if __name__ == "__main__":
    main()
