"""The HTTP client against a real server: checks, batches, recording, fail-closed answers."""

from __future__ import annotations

import time

import pytest

from consentry.domain.decide import Reason
from consentry.sdk import Client, ConsentryError, ConsentryUnavailable
from tests.sdk.conftest import LiveServer, free_port


def test_record_then_check_reads_the_write(live: LiveServer) -> None:
    with Client(live.url, live.key) as client:
        written = client.record("alice", {"email": "given", "analytics": "refused"})
        assert written.token == 2 and len(written.events) == 2
        d = client.check("alice", "email", min_token=written.token)
        assert d.permitted and d.reason is Reason.GRANTED and d.position == 1
        many = client.check_many([("alice", "email"), ("alice", "analytics"), ("bob", "email")])
        assert [x.reason for x in many] == [Reason.GRANTED, Reason.REFUSED, Reason.NOT_GIVEN]
        withdrawn = client.record("alice", {"email": "withdrawn"})
        d = client.check("alice", "email", min_token=withdrawn.token)
        assert not d.permitted and d.reason is Reason.WITHDRAWN


def test_record_is_idempotent_with_a_key(live: LiveServer) -> None:
    with Client(live.url, live.key) as client:
        first = client.record("carol", {"email": "given"}, idempotency_key="k-1")
        again = client.record("carol", {"email": "given"}, idempotency_key="k-1")
        assert first.token == again.token
        assert len(live.services.store.subject_history("default", "carol")) == 1


def test_errors_deny_unless_asked_to_raise(live: LiveServer) -> None:
    with Client(live.url, live.key) as client:
        d = client.check("x", "no-such-purpose")
        assert not d.permitted and d.reason is Reason.UNAVAILABLE
    with Client(live.url, live.key, raise_errors=True) as client:
        with pytest.raises(ConsentryError) as err:
            client.check("x", "no-such-purpose")
        assert err.value.status == 422
    with Client(live.url, "csk_bad_key") as client, pytest.raises(ConsentryError):
        client.record("x", {"email": "given"})  # writes always raise


def test_server_unreachable_is_unavailable_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "csk_x", retries=2, backoff=0.01) as client:
        started = time.monotonic()
        d = client.check("x", "email")
        assert not d.permitted and d.reason is Reason.UNAVAILABLE
        assert time.monotonic() - started < 2
        assert client.check_many([("a", "email"), ("b", "ads")])[1].reason is Reason.UNAVAILABLE
    with (
        Client(url, "csk_x", retries=0, raise_errors=True) as client,
        pytest.raises(ConsentryUnavailable),
    ):
        client.check("x", "email")


def test_gpc_through_the_client(live: LiveServer) -> None:
    with Client(live.url, live.key) as client:
        d = client.check("g", "ads", jurisdiction="US-CA", gpc=True)
        assert not d.permitted and d.reason is Reason.GPC_OPT_OUT
        assert client.check("g", "ads").reason is Reason.GPC_OPT_OUT  # recorded once
