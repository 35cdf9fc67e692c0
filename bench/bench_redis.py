"""A server check through Redis vs a raw redis-py GET, same Redis, same process.

    python bench/bench_redis.py [--redis redis://127.0.0.1:6379/15] [--n 3000]

The server's read path with the in-process cache OFF (local_cache=False), so every check goes
to Redis: one pipelined HMGET, decode, decide(). It still reads the log head first (the tag a
miss would fill with; ~10 us on SQLite). The baseline is one `GET` of a short key with the same
client library (redis-py with hiredis). Uses Redis database 15 by default and deletes its keys.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import redis
from _common import PURPOSES, machine, median, seed

from consentry.config import Settings
from consentry.services import Services


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="consentry-bench-redis-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    seeded, _ = seed(db_url, args.subjects)
    services = Services.build(
        Settings(database_url=db_url, redis_url=args.redis, local_cache=False), seeded.store
    )
    raw = redis.Redis.from_url(args.redis)
    raw.set("consentry:bench:raw", b"x" * 200)
    keys = [(f"user-{i % args.subjects:06d}", PURPOSES[i % 3]) for i in range(args.n)]
    check = services.decisions.check
    for s, p in keys:  # fill Redis
        check("default", s, p)
    base, mine = [], []
    try:
        for _ in range(args.rounds):
            started = time.perf_counter()
            for _ in keys:
                raw.get("consentry:bench:raw")
            base.append((time.perf_counter() - started) / len(keys))
            started = time.perf_counter()
            for s, p in keys:
                check("default", s, p)
            mine.append((time.perf_counter() - started) / len(keys))
        stats = services.decisions.reader.stats()  # type: ignore[union-attr]
    finally:
        for k in raw.scan_iter("consentry:*"):
            raw.delete(k)
        raw.close()
        services.close()
        shutil.rmtree(tmp, ignore_errors=True)
    b, m = median(base), median(mine)
    print(
        f"raw GET: {b * 1e6:.1f} us; server check through Redis: {m * 1e6:.1f} us; "
        f"ratio {m / b:.2f}x; cache {stats.get('redis')}"
    )
    print(
        json.dumps(
            {
                "raw_get_us": round(b * 1e6, 1),
                "check_us": round(m * 1e6, 1),
                "ratio": round(m / b, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
