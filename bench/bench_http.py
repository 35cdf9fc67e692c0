"""HTTP checks against a bare ASGI endpoint: same uvicorn, same worker count, same load generator.

    python bench/bench_http.py [--seconds 5] [--rounds 3] [--connections 32] [--db sqlite|postgres]

Two servers run one after the other, each `uvicorn --workers 1` in a subprocess: the bare ASGI
app of bench/bare_asgi.py (a constant JSON body) and Consentry (`consentry.api.app:factory`) on a
seeded database. wrk (Debian package `wrk`), one thread, drives each in turn with the same
script; rounds alternate so that drift on a shared machine hits both alike. The single check
cycles through 2,000 subjects and 3 purposes; the batch posts 100 checks of varied subjects.
Prints the median requests/s of each, the ratio, and checks/s for the batch.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import machine, median, seed, server

SUBJECTS = 2000
BATCH = 100

GET_SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(key)s"
local i = 0
local purposes = {"email", "analytics", "ads"}
request = function()
  i = i + 1
  local path = string.format("/v1/decisions?subject=user-%%06d&purpose=%%s",
                             i %% %(subjects)d, purposes[(i %% 3) + 1])
  return wrk.format("GET", path)
end
"""

POST_SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
local i = 0
init = function(args)
  local purposes = {"email", "analytics", "ads"}
  for b = 1, 50 do
    local parts = {}
    for c = 1, %(batch)d do
      local n = (b * %(batch)d + c * 7) %% %(subjects)d
      local p = purposes[(c %% 3) + 1]
      parts[c] = string.format('{"subject":"user-%%06d","purpose":"%%s"}', n, p)
    end
    bodies[b] = '{"checks":[' .. table.concat(parts, ",") .. ']}'
  end
end
request = function()
  i = i + 1
  return wrk.format("POST", "/v1/decisions", nil, bodies[(i %% 50) + 1])
end
"""


def wrk(url: str, script: Path, seconds: float, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(out)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="consentry-bench-http-"))
    schema = None
    if args.db == "sqlite":
        db_url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        import psycopg

        schema = "bench_http"
        with psycopg.connect(args.pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
        db_url = f"{args.pg_url}?options=-csearch_path%3D{schema}"
    services, key = seed(db_url, SUBJECTS)
    services.close()
    get_script = tmp / "get.lua"
    get_script.write_text(GET_SCRIPT % {"key": key, "subjects": SUBJECTS})
    post_script = tmp / "post.lua"
    post_script.write_text(POST_SCRIPT % {"key": key, "subjects": SUBJECTS, "batch": BATCH})
    env = {"CONSENTRY_DATABASE_URL": db_url}
    results: dict[str, list[float]] = {"bare_get": [], "get": [], "bare_post": [], "post": []}
    try:
        for _ in range(args.rounds):
            with server(["bare_asgi:app"]) as url:
                wrk(url, get_script, 1, args.connections)  # warm-up
                results["bare_get"].append(wrk(url, get_script, args.seconds, args.connections))
                results["bare_post"].append(wrk(url, post_script, args.seconds, args.connections))
            with server(["--factory", "consentry.api.app:factory"], env) as url:
                wrk(url, get_script, 1, args.connections)  # warm-up: keys, caches
                wrk(url, post_script, 1, args.connections)
                results["get"].append(wrk(url, get_script, args.seconds, args.connections))
                results["post"].append(wrk(url, post_script, args.seconds, args.connections))
    finally:
        if schema is not None:
            import psycopg

            with psycopg.connect(args.pg_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        shutil.rmtree(tmp, ignore_errors=True)
    m = {k: median(v) for k, v in results.items()}
    summary = {
        "db": args.db,
        "bare_get_rps": round(m["bare_get"]),
        "check_get_rps": round(m["get"]),
        "get_ratio": round(m["get"] / m["bare_get"], 2),
        "bare_post_rps": round(m["bare_post"]),
        "batch_rps": round(m["post"]),
        "batch_checks_per_s": round(m["post"] * BATCH),
        "rounds": {k: [round(x) for x in v] for k, v in results.items()},
    }
    print(
        f"single check: {m['get']:.0f} req/s vs bare {m['bare_get']:.0f} req/s "
        f"(ratio {m['get'] / m['bare_get']:.2f}; targets >= 5000 and >= 0.5)"
    )
    print(
        f"batch of {BATCH}: {m['post']:.0f} req/s = {m['post'] * BATCH:.0f} checks/s "
        f"(target >= 200000)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
