"""The commands topic applies the input rules of the API (issue 10 #7, #8, #11): a command
carrying a time out of range, a bad subject, a look-alike jurisdiction or a control character is
dead-lettered with the reason, nothing written; on both backends."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from consentry.propagation.commands import CommandProcessor, InvalidCommand, command
from consentry.services import Services
from tests.propagation.test_commands import one, processor, services

__all__ = ["processor", "services"]


def record(**data: Any) -> dict[str, Any]:
    return command("record", {**one("email", "given"), **data})


def withdraw(**data: Any) -> dict[str, Any]:
    return command("withdraw_all", {"subject": "u", "reason": "left", **data})


BAD: dict[str, dict[str, Any]] = {
    "year 0": record(occurred_at="0001-01-01T00:00:00+01:00"),
    "1969": record(occurred_at="1969-12-31T23:59:59Z"),
    "future": record(occurred_at="2999-01-01T00:00:00Z"),
    "a number": record(occurred_at=0),
    "withdraw 1969": withdraw(occurred_at="1969-12-31T23:59:59Z"),
    "cloudevent time": {**record(), "time": "0001-01-01T00:00:00+01:00"},
    "cloudevent time number": {**record(), "time": 0},
    "subject space": record(subject="u "),
    "subject NUL": record(subject="u\x00"),
    "subject not NFC": withdraw(subject="e\u0301"),
    "jurisdiction": record(jurisdiction="D\u0415"),
    "user agent": record(evidence={"user_agent": "a\x00"}),
    "command id": {**record(), "id": "c\x00"},
    "tenant": {**record(), "tenant": "default\x00"},
    "reason": withdraw(reason="left\x00"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_command_with_a_bad_input_is_dead_lettered(
    services: Services, processor: CommandProcessor, name: str
) -> None:
    head = services.store.head()
    with pytest.raises(InvalidCommand):
        processor.process(orjson.dumps(BAD[name]))
    assert services.store.head() == head


def test_a_good_command_still_records(services: Services, processor: CommandProcessor) -> None:
    result = processor.process(orjson.dumps(record(occurred_at="2026-01-01T00:00:00+02:00")))
    assert result.outcome == "recorded"
