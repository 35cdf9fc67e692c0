"""Replica check vs a plain dict lookup of the same states, in one process, one core.

    python bench/bench_replica.py [--subjects 2000] [--rounds 7]

A Consentry server (uvicorn subprocess, SQLite) is seeded; a Replica bootstraps from it. The
baseline is the cheapest thing an in-process cache could do: a function that looks the same
(subject, purpose) up in a dict of dicts of the same state entries. Both are called through the
same loop over the same 6,000 (subject, purpose) pairs; medians over rounds.
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

from _common import PURPOSES, machine, median, seed, server

from consentry.sdk import Client, Replica


def per_call(fn: object, keys: list[tuple[str, str]], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        for s, p in keys:
            fn(s, p)  # type: ignore[operator]
        out.append((time.perf_counter() - started) / len(keys))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="consentry-bench-replica-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    services, key = seed(db_url, args.subjects)
    services.close()
    try:
        with server(
            ["--factory", "consentry.api.app:factory"], {"CONSENTRY_DATABASE_URL": db_url}
        ) as url:
            client = Client(url, key)
            replica = Replica(client=client)
            states = {s: dict(entries) for s, entries in replica._state.items()}
            empty: dict[str, object] = {}

            def lookup(subject: str, purpose: str) -> object:
                return states.get(subject, empty).get(purpose)

            keys = [(f"user-{i:06d}", p) for i in range(args.subjects) for p in PURPOSES]
            check = replica.check
            per_call(check, keys, 1)  # warm: decisions cached
            base, mine = [], []
            for _ in range(args.rounds):  # interleaved, so drift hits both
                base += per_call(lookup, keys, 1)
                mine += per_call(check, keys, 1)
            replica.close()
            client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    b, m = median(base), median(mine)
    print(
        f"dict lookup: {b * 1e9:.0f} ns/call; replica.check: {m * 1e9:.0f} ns/call "
        f"= {1 / m:,.0f} checks/s on one core; ratio {m / b:.2f}x "
        "(targets <= 3 us, >= 300k/s, <= 3x)"
    )
    print(
        json.dumps(
            {
                "dict_ns": round(b * 1e9),
                "check_ns": round(m * 1e9),
                "checks_per_s": round(1 / m),
                "ratio": round(m / b, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
