"""The API as an AWS Lambda function: the handler invoked with API Gateway events (REST API
payload 1.0, HTTP API payload 2.0; tests/deploy/events/, in the shape of AWS's documentation)
against PostgreSQL: record, decide, the one error shape, base64 bodies, multi-value headers and
query strings, named stages, and what a cold start does when the database or the keys are not
ready."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from consentry.config import Settings
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.keys import create_key
from consentry.ledger.checkpoint import SigningKey, generate_private_key
from consentry.serverless import aws_lambda
from consentry.services import Services
from consentry.storage.base import Role

EVENTS = Path(__file__).parent / "events"
CONTEXT = SimpleNamespace(  # what Lambda passes; the app never reads it
    function_name="consentry-api",
    aws_request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    memory_limit_in_mb=512,
)


def event(name: str, key: str = "") -> dict[str, Any]:
    text = (EVENTS / name).read_text(encoding="utf-8").replace("{{API_KEY}}", key)
    return dict(json.loads(text))


def stored(url: str, event_id: str) -> Any:
    """The event as the log keeps it (the API's answer carries no evidence fields)."""
    services = Services.build(Settings(database_url=url))
    try:
        [found] = services.store.get_events("default", [uuid.UUID(event_id)])
    finally:
        services.close()
    return found


def body_of(response: dict[str, Any]) -> Any:
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw)


@pytest.fixture
def deployed(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated PostgreSQL database with a purpose and a collector key, and the function's
    environment pointing at it (keys from CONSENTRY_SIGNING_KEYS, as on Lambda). Yields the key."""
    signing = SigningKey("consentry/default", generate_private_key()).to_string()
    settings = Settings(database_url=pg_url, signing_keys={"default": signing})
    services = Services.build(settings)
    try:
        services.store.migrate()
        services.store.ensure_tenant("default")
        purpose = Purpose("email_marketing", "Email marketing", LegalBasis.CONSENT)
        services.recorder.add_purpose("default", purpose)
        key = create_key(services.store, "default", Role.COLLECTOR).key
    finally:
        services.close()
    for name in [n for n in __import__("os").environ if n.startswith("CONSENTRY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CONSENTRY_DATABASE_URL", pg_url)
    monkeypatch.setenv("CONSENTRY_SIGNING_KEYS", json.dumps({"default": signing}))
    aws_lambda.reset()
    try:
        yield key
    finally:
        aws_lambda.reset()


def test_rest_api_records_and_decides(deployed: str, pg_url: str) -> None:
    recorded = aws_lambda.handler(event("rest-v1-post-consents.json", deployed), CONTEXT)
    assert recorded["statusCode"] == 201, recorded
    assert recorded["isBase64Encoded"] is False
    assert recorded["headers"]["content-type"] == "application/json"
    result = body_of(recorded)
    [recorded_event] = result["events"]
    assert recorded_event["action"] == "given" and recorded_event["receipt"]["signature"]
    kept = stored(pg_url, recorded_event["event_id"])
    assert kept.subject == "u-lambda-1" and kept.evidence.jurisdiction == "DE"

    decided = aws_lambda.handler(event("rest-v1-get-decision.json", deployed), CONTEXT)
    assert decided["statusCode"] == 200, decided
    decision = body_of(decided)
    assert decision["permitted"] is True and decision["reason"] == "granted"
    assert decision["position"] == recorded_event["position"]


def test_rest_api_reads_multi_value_headers_and_query_strings(deployed: str) -> None:
    """REST APIs send both forms; the multi-value ones alone carry everything."""
    aws_lambda.handler(event("rest-v1-post-consents.json", deployed), CONTEXT)
    only_multi = event("rest-v1-get-decision.json", deployed)
    only_multi["headers"] = None
    only_multi["queryStringParameters"] = None
    assert only_multi["multiValueQueryStringParameters"]["utm_source"] == ["newsletter", "banner"]
    decided = aws_lambda.handler(only_multi, CONTEXT)
    assert decided["statusCode"] == 200, decided
    assert body_of(decided)["permitted"] is True


def test_http_api_records_a_base64_body_and_decides_through_a_named_stage(
    deployed: str, pg_url: str
) -> None:
    posted = event("http-v2-post-consents-base64.json", deployed)
    assert posted["isBase64Encoded"] is True and not posted["body"].startswith("{")
    recorded = aws_lambda.handler(posted, CONTEXT)
    assert recorded["statusCode"] == 201, recorded
    [recorded_event] = body_of(recorded)["events"]
    kept = stored(pg_url, recorded_event["event_id"])
    assert kept.subject == "u-lambda-2" and kept.evidence.jurisdiction == "FR"

    staged = event("http-v2-get-decision-stage.json", deployed)
    assert staged["rawPath"] == "/prod/v1/decisions" and staged["requestContext"]["stage"] == "prod"
    decided = aws_lambda.handler(staged, CONTEXT)
    assert decided["statusCode"] == 200, decided
    assert body_of(decided)["permitted"] is True
    assert body_of(decided)["position"] == recorded_event["position"]


def test_errors_come_in_the_one_error_shape(deployed: str) -> None:
    invalid = aws_lambda.handler(event("rest-v1-post-consents-invalid.json", deployed), CONTEXT)
    assert invalid["statusCode"] == 422
    error = body_of(invalid)["error"]
    assert error["status"] == 422 and error["code"] == "validation_error"
    assert any(d["field"].startswith("events") for d in error["details"])

    anonymous = aws_lambda.handler(event("http-v2-get-decision-unauthenticated.json"), CONTEXT)
    assert anonymous["statusCode"] == 401
    assert body_of(anonymous)["error"]["code"] == "unauthenticated"
    assert anonymous["headers"]["www-authenticate"] == "Bearer"

    not_a_request = aws_lambda.handler({"Records": [{"eventSource": "aws:sqs"}]}, CONTEXT)
    assert not_a_request["statusCode"] == 400
    assert body_of(not_a_request)["error"]["code"] == "unsupported_event"


def test_settings_are_read_once_per_cold_start(
    deployed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Settings] = []

    def counting() -> Settings:
        built.append(Settings())
        return built[-1]

    monkeypatch.setattr(aws_lambda, "Settings", counting)
    for _ in range(3):
        response = aws_lambda.handler(event("rest-v1-get-decision.json", deployed), CONTEXT)
        assert response["statusCode"] == 200
    assert len(built) == 1, "one Settings object per execution environment"
    aws_lambda.reset()  # a new execution environment
    aws_lambda.handler(event("rest-v1-get-decision.json", deployed), CONTEXT)
    assert len(built) == 2


def test_an_unmigrated_database_is_refused_until_it_is_migrated(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    signing = SigningKey("consentry/default", generate_private_key()).to_string()
    monkeypatch.setenv("CONSENTRY_DATABASE_URL", pg_url)
    monkeypatch.setenv("CONSENTRY_SIGNING_KEYS", json.dumps({"default": signing}))
    aws_lambda.reset()
    try:
        refused = aws_lambda.handler(event("rest-v1-get-decision.json"), CONTEXT)
        assert refused["statusCode"] == 503
        assert body_of(refused)["error"]["code"] == "schema_mismatch"
        assert "consentry migrate" in body_of(refused)["error"]["message"]
        services = Services.build(Settings(database_url=pg_url))
        try:
            services.store.migrate()
            services.store.ensure_tenant("default")
        finally:
            services.close()
        after = aws_lambda.handler(event("rest-v1-get-decision.json"), CONTEXT)
        assert after["statusCode"] == 401, "the next invocation built the API on the new schema"
    finally:
        aws_lambda.reset()


@pytest.mark.parametrize("keys_dir", ["consentry-keys", "/tmp/consentry-keys"])
def test_keys_that_would_die_with_the_instance_are_refused(
    keys_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONSENTRY_SIGNING_KEYS", raising=False)
    monkeypatch.setenv("CONSENTRY_SIGNING_KEYS_DIR", keys_dir)
    monkeypatch.setenv("CONSENTRY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    aws_lambda.reset()
    try:
        refused = aws_lambda.handler(event("rest-v1-get-decision.json"), CONTEXT)
    finally:
        aws_lambda.reset()
    assert refused["statusCode"] == 500
    error = body_of(refused)["error"]
    assert error["code"] == "misconfigured" and "CONSENTRY_SIGNING_KEYS" in error["message"]


def test_a_keys_folder_on_shared_storage_is_accepted() -> None:
    aws_lambda.check_settings(Settings(signing_keys_dir=Path("/mnt/efs/consentry-keys")))
    with pytest.raises(aws_lambda.ServerlessConfigError):
        aws_lambda.check_settings(Settings(signing_keys_dir=Path("/tmp")))
