# SQLite's part of `clearance audit verify`, query by query: the packed page
# query (read from crates/store/src/sqlite/packed.rs) and three variants run
# page after page over a whole ledger, one thread, nothing decoded or hashed.
#
#   pip install pysqlite3-binary   # SQLite >= 3.44 (octet_length, unhex)
#   python3 bench/verify_query.py PATH/clearance.db [rounds]
#
# payloads:     the payloads' aggregate alone (the least any page read costs);
# no-checks:    every column's aggregate, no type checks;
# current:      the query verification runs;
# consolidated: the checks folded into the numbers' list (a row failing them
#               gives a number that does not parse), `at` with `kind` and
#               the two hashes each concatenated into one aggregate.
import pathlib, sys, time

import pysqlite3 as sqlite3

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = 2000
source = (ROOT / "crates/store/src/sqlite/packed.rs").read_text()
CURRENT = source.split('const QUERY: &str = "', 1)[1].split('";', 1)[0]
RANGE = " FROM ledger WHERE seq > ?1 AND seq <= ?1 + ?2"
CHECKS = """+seq = +rowid AND +at >= '' AND +at < x'' AND +kind >= '' AND +kind < x''
    AND +payload >= ''
    AND iif(+prev_hash >= x'', octet_length(prev_hash) = 32,
            +prev_hash >= '' AND octet_length(prev_hash) = 64)
    AND iif(+hash >= x'', octet_length(hash) = 32,
            +hash >= '' AND octet_length(hash) = 64)"""
HASHES = "iif(+prev_hash >= x'', prev_hash, unhex(prev_hash)) || iif(+hash >= x'', hash, unhex(hash))"
QUERIES = {
    "payloads": "SELECT CAST(group_concat(payload, '') AS BLOB)" + RANGE,
    "no-checks": """SELECT count(*), max(seq), group_concat(seq, ' '),
        group_concat(octet_length(payload) * 2 + (+payload < x''), ' '),
        CAST(group_concat(at, char(10)) AS BLOB), CAST(group_concat(kind, char(10)) AS BLOB),
        CAST(group_concat(payload, '') AS BLOB),
        CAST(group_concat(iif(+prev_hash >= x'', prev_hash, unhex(prev_hash)), '') AS BLOB),
        CAST(group_concat(iif(+hash >= x'', hash, unhex(hash)), '') AS BLOB)""" + RANGE,
    "current": CURRENT,
    "consolidated": f"""SELECT group_concat(iif({CHECKS}, seq, 'x'), ' '),
        group_concat(octet_length(payload) * 2 + (+payload < x''), ' '),
        CAST(group_concat(at || char(10) || kind, char(10)) AS BLOB),
        CAST(group_concat(payload, '') AS BLOB),
        CAST(group_concat({HASHES}, '') AS BLOB)""" + RANGE,
}

db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
last = db.execute("SELECT max(seq) FROM ledger").fetchone()[0] or 0
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
print(f"SQLite {sqlite3.sqlite_version}, {last} records, pages of {PAGE}")
times = {name: [] for name in QUERIES}
for _ in range(rounds):
    for name, query in QUERIES.items():
        started = time.perf_counter()
        for after in range(0, last, PAGE):
            db.execute(query, (after, PAGE)).fetchall()
        times[name].append(time.perf_counter() - started)
for name, runs in times.items():
    print(f"{name:13} " + " ".join(f"{t:.3f}s" for t in runs))
