"""The README quick start, run as a new user would: serve on a new database, then the curls.

The commands are read from README.md itself, so the README cannot drift from what works. The
only change is the port (a free one instead of 8000, so tests never collide with a real server).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, str, subprocess.Popen[str]]]:
    """`consentry serve` in an empty folder, as the quick start's first line runs it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_PORT"] = str(port)
    exe = shutil.which("consentry") or f"{sys.executable} -m consentry"
    proc = subprocess.Popen(
        [*exe.split(), "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Consentry on http://" in line:
                break
        key = next((ln.strip() for ln in lines if ln.strip().startswith("csk_")), "")
        assert key, "serve did not print an admin key on first start:\n" + "".join(lines)
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield port, key, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_readme_has_exactly_one_install_and_run_line_and_one_test_line() -> None:
    blocks = shell_blocks(README.read_text())
    assert blocks[0].strip() == "pip install -e . && consentry serve"
    assert 'pip install -e ".[test]" && pytest' in [b.strip() for b in blocks]


def test_quick_start_records_and_checks_a_consent(
    served: tuple[int, str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    port, key, _ = served
    assert (tmp_path / "consentry.db").exists(), "the database is a file in the working dir"
    curls = shell_blocks(README.read_text())[1]
    script = curls.replace("localhost:8000", f"localhost:{port}")
    commands = [c for c in re.split(r"\n\s*\n", script.strip()) if c.strip()]
    assert len(commands) == 3
    outputs = []
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", command],
            env={**os.environ, "KEY": key},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        outputs.append(json.loads(result.stdout))
    assert outputs[0]["id"] == "email_marketing"
    assert outputs[1]["events"][0]["position"] == 1
    decision = outputs[2]
    assert decision["permitted"] is True and decision["reason"] == "granted"
    assert decision["position"] == 1


def test_second_start_prints_no_new_key(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_PORT"] = str(port)
    first = subprocess.run(
        ["consentry", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "csk_" in first.stdout
    again = subprocess.run(
        ["consentry", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "csk_" not in again.stdout and "nothing to do" in again.stdout
