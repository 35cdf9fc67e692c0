"""The JSON forms of decisions, purposes, notices and events: the same on every transport."""

from __future__ import annotations

from typing import Any

from consentry.domain.decide import Decision
from consentry.domain.events import RecordedEvent, format_time
from consentry.domain.notices import Notice
from consentry.domain.purposes import Purpose
from consentry.storage.base import ApiKey


def decision_to_dict(d: Decision) -> dict[str, Any]:
    return {
        "subject": d.subject,
        "purpose": d.purpose,
        "permitted": d.permitted,
        "reason": d.reason.value,
        "basis": d.basis.value if d.basis else None,
        "position": d.position,
        "notice_version": d.notice_version,
        "decided_at": format_time(d.decided_at),
        "valid_until": format_time(d.valid_until) if d.valid_until else None,
        "restrictions": list(d.restrictions),
    }


# Evidence about the person beyond what deciding needs: shown only to roles that may read
# history (keys.may_read_evidence). Null, not absent, so every form keeps the event's schema.
PERSONAL_EVIDENCE = ("ip", "user_agent", "raw_signal")


def event_to_dict(event: RecordedEvent, *, evidence: bool) -> dict[str, Any]:
    """RecordedEvent.to_dict(), with the personal evidence nulled unless `evidence`."""
    data = event.to_dict()
    if not evidence:
        for name in PERSONAL_EVIDENCE:
            data[name] = None
    return data


def purpose_to_dict(p: Purpose) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "legal_basis": p.legal_basis.value,
        "required": p.required,
        "lifetime_days": p.lifetime_days,
        "opt_out_category": p.opt_out_category.value if p.opt_out_category else None,
    }


def notice_to_dict(n: Notice) -> dict[str, Any]:
    return {
        "id": n.id,
        "version": n.version,
        "text": n.text,
        "content_hash": n.content_hash,
        "purposes": list(n.purposes),
        "material": n.material,
        "grace_days": n.grace_days,
        "published_at": format_time(n.published_at),
        "recorded_at": format_time(n.recorded_at) if n.recorded_at else None,
    }


def key_to_dict(key: ApiKey) -> dict[str, Any]:
    """An API key as the API and the CLI show it: never the key itself, only its hash is kept."""
    return {
        "key_id": key.key_id,
        "tenant": key.tenant,
        "role": key.role.value,
        "label": key.label,
        "created_at": format_time(key.created_at),
        "revoked_at": format_time(key.revoked_at) if key.revoked_at else None,
    }
