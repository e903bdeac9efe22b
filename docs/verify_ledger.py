#!/usr/bin/env python3
"""Verify a clearance ledger export without clearance.

    clearance audit export --db clearance.db > ledger.jsonl
    python3 verify_ledger.py ledger.jsonl

Implements docs/ledger.md from the specification alone, with the standard
library. Exits 0 and prints the head hash when the chain is intact; exits 1
naming the first bad record otherwise.
"""
import hashlib
import json
import struct
import sys

DOMAIN = b"clearance.ledger.v1"


def record_hash(seq, at, kind, payload, prev_hash):
    h = hashlib.sha256()
    h.update(DOMAIN)
    h.update(struct.pack(">Q", seq))
    for field in (at, kind, payload):
        data = field.encode("utf-8")
        h.update(struct.pack(">Q", len(data)))
        h.update(data)
    h.update(prev_hash)
    return h.digest()


def verify(lines):
    expected, prev = 1, bytes(32)
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line)
        if r["seq"] != expected:
            return expected - 1, f"record {r['seq']}: expected record {expected} here"
        if bytes.fromhex(r["prev_hash"]) != prev:
            return expected - 1, f"record {r['seq']}: prev_hash does not match record {expected - 1}"
        computed = record_hash(r["seq"], r["at"], r["kind"], r["payload"], prev)
        if computed.hex() != r["hash"]:
            return expected - 1, f"record {r['seq']}: content does not match its hash"
        expected, prev = expected + 1, computed
    return expected - 1, None


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        verified, problem = verify(f)
    if problem:
        print(f"BROKEN: {problem} ({verified} records verified before it)")
        return 1
    print(f"ok: {verified} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
