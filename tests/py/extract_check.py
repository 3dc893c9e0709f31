"""Independent checks of partner extracts (no dhub code): project pseudonyms equal
HMAC-SHA256 under K("project:<id>") = HKDF-SHA256(salt="dhub-v1", ikm=master,
info="project:<id>") of the research pseudonyms, first 16 bytes hex; extracts of two
projects share no id and hold no research pseudonym.

    python extract_check.py KEY_FILE STORE_DIR EXTRACT_DIR:PROJECT [EXTRACT_DIR:PROJECT ...]

Each EXTRACT_DIR is read with polars (all part files); its `patient` column is checked
against the research pseudonyms of the store's patients table (read with deltalake).
Prints a JSON summary."""

import hashlib
import hmac
import json
import pathlib
import sys

import deltalake
import polars as pl


def hkdf(master: bytes, info: bytes) -> bytes:
    prk = hmac.new(b"dhub-v1", master, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


key_file, store = sys.argv[1], sys.argv[2]
master = bytes.fromhex(pathlib.Path(key_file).read_text().strip())
research = set(pl.from_arrow(deltalake.DeltaTable(f"{store}/patients").to_pyarrow_table())["id"].to_list())
seen = {}
summary = {"research_patients": len(research)}
for arg in sys.argv[3:]:
    d, project = arg.rsplit(":", 1)
    files = sorted(str(p) for p in pathlib.Path(d).glob("part-*"))
    df = pl.read_parquet(files) if files[0].endswith(".parquet") else pl.concat([pl.read_csv(f) for f in files])
    k = hkdf(master, f"project:{project}".encode())
    expected = {hmac.new(k, r.encode(), hashlib.sha256).hexdigest()[:32]: r for r in research}
    got = set(df["patient"].to_list())
    assert got <= set(expected), f"{project}: {len(got - set(expected))} patient ids are not project pseudonyms"
    assert not (got & research), f"{project}: research pseudonyms leaked"
    for other, ids in seen.items():
        assert not (got & ids), f"{project} and {other} share ids"
    # every other string column: no research pseudonym anywhere
    for c, t in zip(df.columns, df.dtypes):
        if t == pl.String:
            assert not (set(df[c].drop_nulls().to_list()) & research), f"{project}: column {c} holds research pseudonyms"
    seen[project] = got
    summary[project] = {"rows": df.height, "distinct_patients": len(got), "columns": df.columns}
print(json.dumps(summary))
