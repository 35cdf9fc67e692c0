"""A real `consentry serve` at its default log level writes no subject id and no token.

uvicorn's access log wrote every request line, query string included: subject ids
(`?subject=...`, `/v1/subjects/.../history`) and preference-link tokens (`?t=...`, bearer
credentials). The server's whole output is read here after requests that carry both.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from consentry.ui.pages import DEMO_TENANT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_logs_hold_no_subject_and_no_token(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_PORT"] = str(port)
    exe = shutil.which("consentry") or f"{sys.executable} -m consentry"
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            [*exe.split(), "serve", "--demo"], cwd=tmp_path, env=env, stdout=out, stderr=err
        )
    subject = f"alice-{uuid.uuid4().hex}"
    try:
        base = f"http://127.0.0.1:{port}"
        key = _admin_key(out_path, proc)
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, timeout=10) as http:
            _wait_ready(http)
            body = {"id": "email", "name": "Email", "legal_basis": "consent"}
            assert http.post("/v1/purposes", json=body, headers=auth).status_code == 201
            consent = {"subject": subject, "events": [{"purpose": "email", "action": "given"}]}
            assert http.post("/v1/consents", json=consent, headers=auth).status_code == 201
            check = f"/v1/decisions?subject={subject}&purpose=email"
            assert http.get(check, headers=auth).json()["permitted"] is True
            assert http.get(f"/v1/subjects/{subject}/history", headers=auth).status_code == 200
            r = http.post(f"/v1/subjects/{subject}/preference-link", json={}, headers=auth)
            token = r.json()["token"]
            assert http.get(f"/preferences?t={token}").status_code == 200
            opened = http.post("/preferences/open", data={"t": token})
            assert opened.status_code == 303
            assert http.get(f"/nowhere/{subject}").status_code == 404
            assert http.get("/demo").status_code == 200, "serve --demo serves the demo"
            assert DEMO_TENANT  # on a tenant of its own (tests/ui/test_demo.py)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    logs = out_path.read_text() + err_path.read_text()
    assert subject not in logs
    for part in token.split("."):
        assert part not in logs, "no part of the preference link's token is logged"
    assert "GET /v1/subjects/{subject}/history 200" in logs, logs  # the access log is on
    assert "GET /v1/decisions 200" in logs, "the fast path is logged too"
    assert "POST /preferences/open 303" in logs and "GET <unmatched> 404" in logs
    assert "?" not in "".join(ln for ln in logs.splitlines() if "consentry.access" in ln)


def _admin_key(out_path: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, out_path.read_text()
        for line in out_path.read_text().splitlines():
            if line.strip().startswith("csk_"):
                return line.strip()
        time.sleep(0.1)
    raise AssertionError("serve printed no admin key:\n" + out_path.read_text())


def _wait_ready(http: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not answer /healthz")
