"""The price of refusing a revoked key within a second: KeyCache.resolve on a hit, and its
periodic revocation-generation read, against the 10-second cache it replaced.

    python bench/bench_keycache.py [--db sqlite|postgres] [--n 200000] [--rounds 5]

Baseline (same run, same process): the old cache's hit path (dict lookup, monotonic clock, age
compare). Consentry: the new hit path (the same, plus the entry's generation and a check that
the generation was read less than a second ago) with the generation read every 0.5 s, which is
counted in (one indexed MAX over api_key_revocations: printed separately too).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import machine, median

from consentry.api.deps import KEY_CACHE_SECONDS, KeyCache
from consentry.config import Settings
from consentry.keys import authenticate, create_key
from consentry.services import Services
from consentry.storage import open_store
from consentry.storage.base import ApiKey, Role

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


class OldKeyCache:
    """The cache before issue 10: a revoked key stayed usable for up to 10 s."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[float, ApiKey]] = {}

    def resolve(self, services: Services, authorization: str | None) -> ApiKey:
        now = time.monotonic()
        if authorization:
            cached = self._keys.get(authorization)
            if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
                return cached[1]
        key = authenticate(services.store, authorization)
        assert authorization is not None
        self._keys[authorization] = (now, key)
        return key


def per_call(resolve: object, services: Services, header: str, n: int) -> float:
    call = resolve.resolve  # type: ignore[attr-defined]
    call(services, header)
    started = time.perf_counter()
    for _ in range(n):
        call(services, header)
    return (time.perf_counter() - started) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="consentry-bench-keys-"))
    schema = None
    if args.db == "sqlite":
        url = f"sqlite:///{tmp / 'keys.db'}"
    else:
        import uuid

        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    store = open_store(url)
    try:
        store.migrate()
        store.ensure_tenant("default")
        services = Services.build(Settings(database_url=url, signing_keys_dir=tmp / "k"), store)
        header = "Bearer " + create_key(store, "default", Role.CHECKER).key
        old, new = [], []
        for _ in range(args.rounds):
            old.append(per_call(OldKeyCache(), services, header, args.n))
            new.append(per_call(KeyCache(), services, header, args.n))
        reads = []
        for _ in range(200):
            started = time.perf_counter()
            store.api_key_generation()
            reads.append((time.perf_counter() - started) * 1e6)
        o, w = median(old), median(new)
        print(f"old 10 s cache, hit:            {o:8.0f} ns/request")
        print(f"new cache, hit + 0.5 s reads:   {w:8.0f} ns/request  ({w / o:.2f}x)")
        print(f"generation read ({args.db}):      {median(reads):8.1f} us, twice a second")
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if schema is not None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
