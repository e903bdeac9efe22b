"""Where a folded perf profile's samples go, by part of the decision path.

Each sample is counted once, in the first category (top to bottom) whose
test its stack passes; "other" lists the deepest clearance, hyper, axum or
tokio frame of what is left.

    python3 bench/flame_summary.py FOLDED
"""
import collections,sys
cats=[
 ("sqlite, in sqlx's worker thread (statements, WAL append)", lambda s: s[0].startswith('sqlx-sqlite')),
 ("engine: the decision (Cedar and the five checks)", lambda s: any('clearance_engine::decision::pipeline' in f for f in s)),
 ("JSON: encoding records and responses", lambda s: any('serde_json::ser::' in f for f in s)),
 ("JSON: parsing the request", lambda s: any('serde_json::de::' in f for f in s)),
 ("zstd: compressing the record", lambda s: any('ZSTD_' in f or 'zstd::' in f for f in s)),
 ("hashing the record (SHA-256)", lambda s: any('sha2::' in f for f in s)),
 ("socket write (the response)", lambda s: any('writev' in f or 'sys_write' in f or 'sys_sendto' in f for f in s)),
 ("socket read (the request)", lambda s: any('sys_recvfrom' in f or 'sys_read' in f or 'readv' in f for f in s)),
 ("epoll (waiting for sockets)", lambda s: any('epoll' in f for f in s)),
 ("futex: waking and parking threads (hand-offs, locks)", lambda s: any('futex' in f for f in s)),
 ("scheduler (other)", lambda s: any('schedule' in f for f in s)),
 ("malloc/free (elsewhere)", lambda s: any(x in s[-1] for x in ('malloc','free','_int_','realloc','tcache','unlink_chunk'))),
]
tot=0; c=collections.Counter(); other=collections.Counter()
for line in open(sys.argv[1]):
    stack,n=line.rstrip().rsplit(' ',1); n=int(n); tot+=n
    s=stack.split(';')
    for name,f in cats:
        if f(s): c[name]+=n; break
    else:
        c['other']+=n
        # find deepest clearance frame
        cl=[f for f in s if 'clearance' in f or 'hyper' in f or 'axum' in f or 'tokio' in f]
        other[(cl[-1] if cl else s[-1])[:120]]+=n
for name,_ in cats+[('other',0)]:
    print(f"| {name} | {100*c[name]/tot:.1f} % |")
print()
for k,v in other.most_common(25): print(f"{100*v/tot:5.1f}% {k}")
