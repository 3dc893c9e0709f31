#!/usr/bin/env python3
"""Independent reference implementation of dhub's key scheme (DESIGN.md, "Pseudonyms and keys").

Uses only the Python standard library (hmac, hashlib) and shares no code with the Rust crate.
Regenerate the vectors with:

    python3 crates/deid/tests/vectors/gen_vectors.py > crates/deid/tests/vectors/vectors.json

The Rust test `vectors` re-runs this script and fails if its output differs from the committed
vectors.json, then checks the Rust implementation against every vector.
"""
import hashlib
import hmac
import json
import re
import sys


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF with SHA-256."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def domain_key(master: bytes, domain: str) -> bytes:
    return hkdf_sha256(b"dhub-v1", master, domain.encode(), 32)


def key_id(master: bytes) -> str:
    return hmac.new(master, b"dhub key id", hashlib.sha256).digest()[:8].hex()


def nhs_valid(digits: str) -> bool:
    if not re.fullmatch(r"[0-9]{10}", digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def normalise(value: str, fmt: str):
    """Returns (normalised or None for blank, error or None)."""
    v = value.strip()
    if v == "":
        return None, None
    if fmt == "text":
        return v, None
    if fmt == "uuid":
        if not re.fullmatch(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}", v):
            return None, "invalid_uuid"
        return v.lower(), None
    if fmt == "nhs_number":
        if not re.fullmatch(r"[0-9 \-]+", v):
            return None, "invalid_nhs_number"
        d = v.replace(" ", "").replace("-", "")
        if not nhs_valid(d):
            return None, "invalid_nhs_number"
        return d, None
    raise ValueError(fmt)


def pseudonym(key: bytes, normalised: str) -> str:
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).digest()[:16].hex()


def date_shift(master: bytes, person_pseudonym: str, rng: int) -> int:
    tag = hmac.new(domain_key(master, "date-shift"), person_pseudonym.encode(), hashlib.sha256).digest()
    v = int.from_bytes(tag[:8], "big")
    return v % (2 * rng + 1) - rng


# RFC 4231 (HMAC-SHA-256) and RFC 5869 (HKDF-SHA-256) vectors, as printed in the RFCs.
RFC4231 = [
    ("0b" * 20, b"Hi There".hex(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe".hex(), b"what do ya want for nothing?".hex(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("aa" * 20, "dd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)).hex(), "cd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    ("aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First".hex(), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ("aa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".hex(), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]
RFC5869 = [
    ("0b" * 22, bytes(range(0x00, 0x0d)).hex(), bytes(range(0xf0, 0xfa)).hex(), 42,
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
    (bytes(range(0x00, 0x50)).hex(), bytes(range(0x60, 0xb0)).hex(), bytes(range(0xb0, 0x100)).hex(), 82,
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
    ("0b" * 22, "", "", 42,
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
]

MASTER = bytes.fromhex("64687562207465737420766563746f7273206f6e6c792c206e65766572207573")

VALUES = {
    "person": [
        ("nhs_number", "9434765919"),
        ("nhs_number", " 943 476 5919 "),
        ("nhs_number", "943-476-5919"),
        ("nhs_number", "4010232137"),
        ("nhs_number", "9434765918"),
        ("nhs_number", "943476591"),
        ("nhs_number", "943476591X"),
        ("nhs_number", ""),
        ("uuid", "3edac2e3-d223-6fae-d515-daf96ef6bc76"),
        ("uuid", "3EDAC2E3-D223-6FAE-D515-DAF96EF6BC76"),
        ("uuid", "\t3edac2e3-d223-6fae-d515-daf96ef6bc76\u00a0"),
        ("uuid", "3edac2e3d2236faed515daf96ef6bc76"),
        ("uuid", "3edac2e3-d223-6fae-d515-daf96ef6bc7g"),
        ("text", "3edac2e3-d223-6fae-d515-daf96ef6bc76"),
        ("text", "  P000123  "),
        ("text", "Zoë Ñúñez"),
        ("text", "   "),
    ],
    "encounter": [
        ("uuid", "9d188916-8390-282b-3ec2-73fce6e08649"),
        ("text", "9d188916-8390-282b-3ec2-73fce6e08649"),
        ("text", "E-42"),
    ],
    "provider": [("text", "G1234567"), ("uuid", "0b2f3c1e-1111-4a2b-9c3d-aabbccddeeff")],
    "organization": [("text", "RXX"), ("text", "A81001")],
    "payer": [("uuid", "b1c428d6-4f07-31e0-90f0-68ffa6ff8c76")],
}

DOMAINS = ["pseudonym:" + e for e in VALUES] + ["date-shift", "project:demo-project", "project:other-project"]
PROJECTS = ["demo-project", "other-project"]


def main() -> None:
    for k, d, out in RFC4231:
        assert hmac.new(bytes.fromhex(k), bytes.fromhex(d), hashlib.sha256).hexdigest() == out
    for ikm, salt, info, length, okm in RFC5869:
        assert hkdf_sha256(bytes.fromhex(salt), bytes.fromhex(ikm), bytes.fromhex(info), length).hex() == okm

    pseudonyms, person_pseudonyms = [], []
    for entity, values in VALUES.items():
        key = domain_key(MASTER, "pseudonym:" + entity)
        for fmt, value in values:
            norm, err = normalise(value, fmt)
            row = {"entity": entity, "format": fmt, "value": value}
            if err:
                row["error"] = err
            elif norm is None:
                row["pseudonym"] = None
            else:
                row["normalised"] = norm
                row["pseudonym"] = pseudonym(key, norm)
                if entity == "person" and row["pseudonym"] not in person_pseudonyms:
                    person_pseudonyms.append(row["pseudonym"])
            pseudonyms.append(row)

    shifts = [
        {"range": rng, "person_pseudonym": p, "shift": date_shift(MASTER, p, rng)}
        for rng in (50, 365)
        for p in person_pseudonyms
    ]
    project = [
        {"project": proj, "research_pseudonym": p,
         "project_pseudonym": pseudonym(domain_key(MASTER, "project:" + proj), p)}
        for proj in PROJECTS
        for p in person_pseudonyms
    ]
    doc = {
        "comment": "Generated by gen_vectors.py (Python hmac/hashlib); do not edit by hand.",
        "master_key_hex": MASTER.hex(),
        "key_id": key_id(MASTER),
        "domain_keys": {d: domain_key(MASTER, d).hex() for d in DOMAINS},
        "pseudonyms": pseudonyms,
        "date_shifts": shifts,
        "project_pseudonyms": project,
        "rfc4231_hmac_sha256": [{"key": k, "data": d, "mac": m} for k, d, m in RFC4231],
        "rfc5869_hkdf_sha256": [{"ikm": i, "salt": s, "info": f, "length": n, "okm": o} for i, s, f, n, o in RFC5869],
    }
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
