"""Global Privacy Control: the `Sec-GPC` header and the `/.well-known/gpc.json` resource.

Per the W3C GPC spec a server must treat exactly ``Sec-GPC: 1`` as the user's opt-out
preference and ignore every other value; the well-known resource states whether a site
supports GPC at all (not per-request status). In California and Colorado, among others,
honouring the header is a legal duty, so these parsers err towards the spec's letter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = [
    "HEADER_NAME",
    "WELL_KNOWN_PATH",
    "GPCResourceError",
    "GPCSupport",
    "parse_gpc_json",
    "sec_gpc_opt_out",
]

HEADER_NAME = "Sec-GPC"
WELL_KNOWN_PATH = "/.well-known/gpc.json"
_OWS = " \t"
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


class GPCResourceError(ValueError):
    """The ``gpc.json`` body is not a JSON object, so nothing can be said about support."""


def sec_gpc_opt_out(values: str | bytes | Iterable[str | bytes] | None) -> bool:
    """True when the request carries the GPC opt-out preference.

    Accepts the header value, several values (one per header line), or None when absent.
    Only the exact value ``1`` counts; if several headers arrive and any is ``1`` it counts as
    one ``1``, as the spec says. A comma-joined value (how some stacks merge repeated headers)
    is split the same way. Surrounding spaces/tabs are not part of an HTTP field value and are
    stripped; any other value, including ``"true"``, ``"0"`` or ``"1 "`` with inner junk, is
    ignored rather than treated as an error, because the spec tells servers to ignore it.
    """
    if values is None:
        return False
    items: Iterable[str | bytes] = [values] if isinstance(values, str | bytes) else values
    for item in items:
        text = item.decode("latin-1") if isinstance(item, bytes) else item
        if any(part.strip(_OWS) == "1" for part in text.split(",")):
            return True
    return False


@dataclass(frozen=True, slots=True)
class GPCSupport:
    """What a site's ``gpc.json`` declares.

    ``gpc`` is None when the member is missing or not a boolean (the spec calls any other value
    "unknown"); ``last_update`` is None when missing or not an RFC 3339 date / date-time.
    """

    gpc: bool | None
    last_update: date | datetime | None = None

    def to_json(self) -> str:
        """The body Consentry serves at ``/.well-known/gpc.json`` for a tenant's site."""
        body: dict[str, Any] = {"gpc": self.gpc}
        if self.last_update is not None:
            body["lastUpdate"] = self.last_update.isoformat()
        return json.dumps(body)


def _rfc3339(value: Any) -> date | datetime | None:
    if not isinstance(value, str):
        return None
    try:
        if _FULL_DATE.fullmatch(value):
            return date.fromisoformat(value)
        if _DATE_TIME.fullmatch(value):
            return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return None


def parse_gpc_json(body: str | bytes | Mapping[str, Any]) -> GPCSupport:
    """Read a ``gpc.json`` body (raw or already parsed) from a site we are checking.

    Unknown members are ignored and bad member values degrade to "unknown", so a sloppy file
    does not break a site scan; only a body that is not a JSON object raises.
    """
    data: Any
    if isinstance(body, Mapping):
        data = body
    else:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GPCResourceError(f"gpc.json is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise GPCResourceError(f"gpc.json must be a JSON object, got {type(data).__name__}")
    gpc = data.get("gpc")
    return GPCSupport(
        gpc=gpc if isinstance(gpc, bool) else None,
        last_update=_rfc3339(data.get("lastUpdate")),
    )
