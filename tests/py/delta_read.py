"""Independent readers of what dhub wrote: the `deltalake` package (delta-rs's Python
binding) and polars (`pl.read_delta`). Used by the Rust end-to-end tests.

    python delta_read.py ROOT TABLE[@VERSION] ... [--values TABLE.COLUMN ...]

ROOT is a local directory or a URL (s3://, az://); cloud options come from the
environment (AWS_*, AZURE_*), as dhub's own do. Prints one JSON object: per table, for
each reader, the Delta version read, the row count, the column names and a digest of the
rows (SHA-256 over the sorted canonical JSON lines), so two readers, two versions or two
runs can be compared exactly; with --values, the sorted values of those columns.
"""

import hashlib
import json
import os
import sys

import deltalake
import polars as pl


def storage_options():
    opts = {}
    if os.environ.get("AWS_ENDPOINT"):
        opts.update(
            {
                "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT"],
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
                "AWS_CONDITIONAL_PUT": "etag",
            }
        )
    if os.environ.get("AZURE_STORAGE_USE_EMULATOR"):
        opts.update(
            {
                "AZURE_STORAGE_USE_EMULATOR": "true",
                "AZURE_STORAGE_ACCOUNT_NAME": os.environ.get("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
                "AZURE_STORAGE_ACCOUNT_KEY": os.environ.get("AZURE_STORAGE_ACCOUNT_KEY", ""),
            }
        )
        if os.environ.get("AZURITE_BLOB_STORAGE_URL"):
            opts["AZURITE_BLOB_STORAGE_URL"] = os.environ["AZURITE_BLOB_STORAGE_URL"]
    return opts or None


def canon(rows):
    lines = sorted(json.dumps(r, default=str, sort_keys=True) for r in rows)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def main(argv):
    root = argv[0].rstrip("/")
    tables, values = [], []
    it = iter(argv[1:])
    for a in it:
        if a == "--values":
            values.append(next(it))
        else:
            tables.append(a)
    opts = storage_options()
    out = {}
    for spec in tables:
        name, _, ver = spec.partition("@")
        version = int(ver) if ver else None
        uri = f"{root}/{name}"
        dt = deltalake.DeltaTable(uri, version=version, storage_options=opts)
        at = dt.to_pyarrow_table()
        rows_dl = at.to_pylist()
        kw = {"version": version} if version is not None else {}
        df = pl.read_delta(uri, storage_options=opts, **kw)
        rows_pl = df.to_dicts()
        out[spec] = {
            "deltalake": {
                "version": dt.version(),
                "rows": at.num_rows,
                "columns": at.schema.names,
                "digest": canon(rows_dl),
            },
            "polars": {"rows": df.height, "columns": df.columns, "digest": canon(rows_pl)},
        }
        for v in values:
            t, _, col = v.partition(".")
            if t == name:
                out[spec].setdefault("values", {})[col] = sorted(
                    x for x in at.column(col).to_pylist() if x is not None
                )
    json.dump(out, sys.stdout, indent=1, default=str)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
