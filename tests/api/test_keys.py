"""API keys: created, listed, revoked and rotated through the API (admin only, per tenant, in
the one error shape), and a revoked key refused by every server within one second."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from consentry.storage.base import Role
from tests.conftest import ApiClient


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["code"] == code and error["message"]


def test_create_list_revoke(api: ApiClient) -> None:
    r = api.client.post("/v1/keys", json={"role": "checker", "label": "edge"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"].startswith("csk_") and created["role"] == "checker"
    assert created["label"] == "edge" and created["revoked_at"] is None
    assert api.client.get("/v1/purposes", headers=bearer(created["key"])).status_code == 200
    listed = api.client.get("/v1/keys").json()["keys"]
    assert created["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k for k in listed), "a listing never shows a key"

    r = api.client.post(f"/v1/keys/{created['key_id']}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    # The revoking process refuses the key at once (it re-reads the generation).
    assert_error(
        api.client.get("/v1/purposes", headers=bearer(created["key"])), 401, "unauthenticated"
    )
    again = api.client.post(f"/v1/keys/{created['key_id']}/revoke")
    assert again.status_code == 200, "revoking twice is harmless"
    assert again.json()["revoked_at"] == r.json()["revoked_at"]


def test_only_admins_of_the_tenant_manage_keys(api: ApiClient) -> None:
    for role in (Role.COLLECTOR, Role.CHECKER, Role.AUDITOR):
        headers = api.key_for(role)
        assert_error(api.client.get("/v1/keys", headers=headers), 403, "forbidden")
        r = api.client.post("/v1/keys", json={"role": "admin"}, headers=headers)
        assert_error(r, 403, "forbidden")
    theirs = api.key_for(Role.ADMIN, tenant="acme")
    mine = api.client.post("/v1/keys", json={"role": "checker"}).json()
    assert_error(
        api.client.post(f"/v1/keys/{mine['key_id']}/revoke", headers=theirs), 404, "not_found"
    )
    assert_error(
        api.client.post(f"/v1/keys/{mine['key_id']}/rotate", headers=theirs), 404, "not_found"
    )
    acme_keys = api.client.get("/v1/keys", headers=theirs).json()["keys"]
    assert {k["tenant"] for k in acme_keys} == {"acme"}
    assert_error(api.client.post("/v1/keys/nope/revoke"), 404, "not_found")
    assert_error(api.client.post("/v1/keys", json={"role": "root"}), 422, "validation_error")
    assert_error(
        api.client.post("/v1/keys", json={"role": "checker", "extra": 1}), 422, "validation_error"
    )
    assert_error(api.client.get("/v1/keys", headers=bearer("csk_nope")), 401, "unauthenticated")


def test_the_last_admin_key_cannot_be_revoked(api: ApiClient) -> None:
    own_id = api.key.split("_")[1]
    r = api.client.post(f"/v1/keys/{own_id}/revoke")
    assert_error(r, 409, "conflict")
    assert "last admin key" in r.json()["error"]["message"]
    assert api.client.get("/v1/keys").status_code == 200, "still in force"
    # With a second admin key, the first can go.
    second = api.client.post("/v1/keys", json={"role": "admin"}).json()
    assert api.client.post(f"/v1/keys/{own_id}/revoke").status_code == 200
    assert_error(api.client.get("/v1/keys"), 401, "unauthenticated")
    assert api.client.get("/v1/keys", headers=bearer(second["key"])).status_code == 200


def test_rotate_keeps_role_and_label_and_honours_the_grace(api: ApiClient) -> None:
    old = api.client.post("/v1/keys", json={"role": "collector", "label": "web"}).json()
    r = api.client.post(f"/v1/keys/{old['key_id']}/rotate", json={"grace_seconds": 1})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["role"] == "collector" and new["label"] == "web" and new["key_id"] != old["key_id"]
    assert new["replaces"]["key_id"] == old["key_id"] and new["replaces"]["revoked_at"]
    assert api.client.get("/v1/purposes", headers=bearer(old["key"])).status_code == 200
    assert api.client.get("/v1/purposes", headers=bearer(new["key"])).status_code == 200
    time.sleep(1.2)  # the grace period ends: the cached old key is refused too
    refused = api.client.get("/v1/purposes", headers=bearer(old["key"]))
    assert_error(refused, 401, "unauthenticated")
    assert api.client.get("/v1/purposes", headers=bearer(new["key"])).status_code == 200
    r = api.client.post(f"/v1/keys/{old['key_id']}/rotate")
    assert_error(r, 409, "conflict")
    too_long = api.client.post(f"/v1/keys/{new['key_id']}/rotate", json={"grace_seconds": -1})
    assert_error(too_long, 422, "validation_error")
    # The last admin key may be rotated: its replacement is an admin key.
    own_id = api.key.split("_")[1]
    rotated = api.client.post(f"/v1/keys/{own_id}/rotate").json()
    assert rotated["role"] == "admin"
    assert_error(api.client.get("/v1/keys"), 401, "unauthenticated")
    assert api.client.get("/v1/keys", headers=bearer(rotated["key"])).status_code == 200


# Two servers, one database -----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def consentry(*args: str, env: dict[str, str]) -> list[str]:
    return [sys.executable, "-c", "from consentry.cli import main; main()", *args]


@pytest.fixture
def two_servers(db_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """Two `consentry serve` processes on one database; their URLs and an admin key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(
        CONSENTRY_DATABASE_URL=db_url,
        CONSENTRY_SIGNING_KEYS_DIR=str(tmp_path / "keys"),
        CONSENTRY_LOG_LEVEL="warning",
    )
    migrated = subprocess.run(
        consentry("migrate", env=env), env=env, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    admin = migrated.stdout.strip().splitlines()[-1]
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    consentry("serve", env=env),
                    env={**env, "CONSENTRY_PORT": str(port)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, f"the server of {url} exited"
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{url} did not start"
                time.sleep(0.1)
        yield urls[0], urls[1], admin
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_a_key_revoked_on_one_server_is_refused_by_the_other_within_a_second(
    two_servers: tuple[str, str, str],
) -> None:
    one, other, admin = two_servers
    r = httpx.post(f"{one}/v1/keys", json={"role": "checker"}, headers=bearer(admin))
    assert r.status_code == 201, r.text
    key, key_id = r.json()["key"], r.json()["key_id"]
    check = f"{other}/v1/decisions?subject=u-1&purpose=email"
    purposes = f"{other}/v1/purposes"
    with httpx.Client(headers=bearer(key), timeout=5) as client:
        for _ in range(3):  # the other server has the key in its cache
            assert client.get(purposes).status_code == 200
            assert client.get(check).status_code != 401
        r = httpx.post(f"{one}/v1/keys/{key_id}/revoke", headers=bearer(admin))
        assert r.status_code == 200, r.text
        revoked = time.monotonic()
        refused = {"purposes": False, "check": False}
        while time.monotonic() < revoked + 1.0 and not all(refused.values()):
            refused["purposes"] = refused["purposes"] or client.get(purposes).status_code == 401
            refused["check"] = refused["check"] or client.get(check).status_code == 401
            time.sleep(0.05)
        # The bound: any request sent a second after the revocation is refused.
        time.sleep(max(0.0, revoked + 1.0 - time.monotonic()))
        late = client.get(purposes)
        assert late.status_code == 401, f"still accepted a second after revocation: {late.text}"
        assert late.json()["error"]["code"] == "unauthenticated"
        assert client.get(check).status_code == 401
