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


FIELDS = {"seq", "at", "kind", "payload", "prev_hash", "hash"}
HEX = set("0123456789abcdef")


def unique_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a field appears twice")
    return dict(pairs)


def record(line):
    """The record on `line`, or why it is none: exactly the six fields, a
    whole number, texts, and hashes as 64 lowercase hex digits."""
    try:
        r = json.loads(line, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError) as e:
        return None, f"not a record: {e}"
    if not isinstance(r, dict) or set(r) != FIELDS:
        return None, "not a record of exactly the fields " + ", ".join(sorted(FIELDS))
    if type(r["seq"]) is not int or not all(isinstance(r[k], str) for k in FIELDS - {"seq"}):
        return None, "seq must be a whole number and the other fields texts"
    if any(len(r[k]) != 64 or not set(r[k]) <= HEX for k in ("prev_hash", "hash")):
        return None, "prev_hash and hash must be 64 lowercase hex digits"
    try:
        for k in ("at", "kind", "payload"):
            r[k].encode("utf-8")
    except UnicodeEncodeError:
        return None, "a text that is no UTF-8 (a lone surrogate)"
    return r, None


def verify(lines):
    expected, prev = 1, bytes(32)
    for line in lines:
        if not line.strip():
            continue
        r, problem = record(line)
        if problem:
            return expected - 1, f"the line after record {expected - 1}: {problem}"
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
