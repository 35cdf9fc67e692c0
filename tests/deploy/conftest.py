"""Shared by the deployment-kit tests: where the kit's files are, and the CLI they must match."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer.main
import yaml

from consentry.cli import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (compose, AsyncAPI, Prometheus)."""
    data = load_yaml(path)
    assert isinstance(data, dict), f"{path.name}: the top level is not a mapping"
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def consentry_exe() -> list[str]:
    exe = shutil.which("consentry")
    return [exe] if exe else [sys.executable, "-c", "from consentry.cli import main; main()"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without CONSENTRY_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(extra)
    return env


def check_cli_args(args: list[str]) -> None:
    """Fail unless `consentry ARGS` names a command and options that exist, with valid values.

    Two ways, as a user would find out: `consentry ARGS --help` must exit 0 (click parses every
    option name before it prints the help), and the command's own parser must accept the values.
    """
    done = subprocess.run(
        [*consentry_exe(), *args, "--help"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"consentry {' '.join(args)} --help: {done.stderr or done.stdout}"
    command: Any = typer.main.get_command(app)
    rest = list(args)
    path = ["consentry"]
    while hasattr(command, "get_command") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        found = command.get_command(command.context_class(command), name)
        assert found is not None, f"consentry has no command {' '.join([*path[1:], name])!r}"
        command, path = found, [*path, name]
    try:
        command.make_context(" ".join(path), rest)
    except Exception as exc:  # click's usage errors, whichever click typer vendors
        raise AssertionError(f"consentry {' '.join(args)}: {exc}") from exc


def serve(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    """`consentry serve` on a free port in `tmp_path` (SQLite there unless env says otherwise)."""
    return subprocess.Popen(
        [*consentry_exe(), "serve"],
        cwd=tmp_path,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait until `url` answers 200, or fail with what the process printed."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the process exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


def stop(proc: subprocess.Popen[str]) -> str:
    """Terminate a process started here and return what it printed."""
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
    return out or ""
