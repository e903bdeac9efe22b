"""Times verify's page query on a SQLite ledger with and without mmap.

    python3 bench/sqlite-mmap.py clearance.db

The query is `clearance_store`'s packed page (crates/store/src/sqlite/packed.rs)
as Python's SQLite 3.40 can run it: `length` for `octet_length`, hashes not
unhexed. One thread, 2,000 records a page, three rounds alternated.
"""
import sqlite3
import sys
import time

QUERY = """SELECT count(*), group_concat(seq, ' '), group_concat(length(payload) * 2, ' '),
  CAST(group_concat(at, char(10)) AS BLOB), CAST(group_concat(kind, char(10)) AS BLOB),
  CAST(group_concat(payload, '') AS BLOB), CAST(group_concat(prev_hash, '') AS BLOB),
  CAST(group_concat(hash, '') AS BLOB),
  (SELECT sum(length(payload) + length(at) + length(kind) + length(prev_hash) + length(hash))
     FROM ledger WHERE seq > ?1 AND seq <= ?1 + 2000)
  FROM ledger WHERE seq > ?1 AND seq <= ?1 + 2000"""


def run(path, mmap):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.execute(f"PRAGMA mmap_size={mmap}")
    last = db.execute("SELECT max(seq) FROM ledger").fetchone()[0] or 0
    wall, cpu = time.perf_counter(), time.process_time()
    for after in range(0, last, 2000):
        db.execute(QUERY, (after,)).fetchone()
    return time.perf_counter() - wall, time.process_time() - cpu


for _ in range(3):
    for mmap in (0, 1 << 30):
        wall, cpu = run(sys.argv[1], mmap)
        print(f"mmap_size {mmap:>10}: wall {wall:.3f} s, cpu {cpu:.3f} s")
