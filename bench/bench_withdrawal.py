"""Time from an acknowledged withdrawal to the replica denying, over the HTTP change feed.

    python bench/bench_withdrawal.py [--n 200]

A Consentry server (uvicorn subprocess, SQLite, one worker) and a Replica following its long-poll
feed in this process. For each round: record `given`, wait until the replica permits, record
`withdrawn` and start the clock when the server acknowledges it (the HTTP response), then spin on
replica.check() until it denies. Prints p50 and p99 (target: p99 <= 100 ms).
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

from _common import machine, median, percentile, seed, server

from consentry.sdk import Client, Replica


def wait(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise TimeoutError("the replica did not converge")
        time.sleep(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="consentry-bench-withdrawal-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    services, key = seed(db_url, 100)
    services.close()
    latencies: list[float] = []
    try:
        with server(
            ["--factory", "consentry.api.app:factory"], {"CONSENTRY_DATABASE_URL": db_url}
        ) as url:
            client = Client(url, key)
            replica = Replica(client=client, poll_wait=10)
            for i in range(args.n):
                subject = f"w-{i}"
                client.record(subject, {"email": "given"})
                wait(lambda s=subject: replica.check(s, "email").permitted)
                client.record(subject, {"email": "withdrawn"})
                acknowledged = time.perf_counter()
                wait(lambda s=subject: not replica.check(s, "email").permitted)
                latencies.append(time.perf_counter() - acknowledged)
            replica.close()
            client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    p50, p99 = median(latencies) * 1e3, percentile(latencies, 99) * 1e3
    print(
        f"withdrawal acknowledged -> replica denies: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"max {max(latencies) * 1e3:.2f} ms over {len(latencies)} (target p99 <= 100 ms)"
    )
    print(json.dumps({"p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "n": len(latencies)}))


if __name__ == "__main__":
    main()
