"""Notices: the text a person was shown when they decided, versioned and append-only.

Consent is only informed if we can say which words the person read. A notice version is never
edited: a change is a new version. A *material* change (new purposes, new recipients) makes earlier
consents to the purposes it covers stale once a grace period ends, which is what re-consent means.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from consentry.domain.errors import ValidationError
from consentry.domain.inputs import check_int, check_text
from consentry.domain.purposes import PURPOSE_ID_PATTERN

DEFAULT_GRACE_DAYS = 30
MAX_GRACE_DAYS = 3650
MAX_TEXT_LENGTH = 200_000


def content_hash(text: str) -> str:
    """The SHA-256 of the notice text, so evidence can prove which words were shown."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Notice:
    """One version of a notice.

    Bitemporal like an event: `published_at` is when it applies (the legal time, which may be
    given in the past), `recorded_at` when Consentry stored it (set by the store, None before).
    "As known at T" sees only the versions recorded by T, so publishing a backdated material
    version later does not rewrite what the system said it knew.
    """

    id: str
    version: int
    text: str
    purposes: tuple[str, ...]
    published_at: datetime
    material: bool = False
    grace_days: int = DEFAULT_GRACE_DAYS
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        if not PURPOSE_ID_PATTERN.match(self.id):
            raise ValidationError(
                f"notice id {self.id!r} must be 1-64 characters of lowercase letters, digits and"
                " _ . : -"
            )
        if self.version < 1:
            raise ValidationError(f"notice {self.id!r}: version must be 1 or more")
        if not self.text.strip():
            raise ValidationError(f"notice {self.id!r} version {self.version}: text is empty")
        if not self.purposes:
            raise ValidationError(f"notice {self.id!r}: it must cover at least one purpose")
        if len(set(self.purposes)) != len(self.purposes):
            raise ValidationError(f"notice {self.id!r}: a purpose is listed twice")
        if self.grace_days < 0:
            raise ValidationError(f"notice {self.id!r}: grace_days cannot be negative")
        if self.published_at.tzinfo is None:
            raise ValidationError("published_at needs a time zone")

    def check_input(self) -> None:
        """The input rules (domain/inputs.py) a NEW version must meet; checked when it is
        written, not when it is read, so that a version stored under older rules stays readable.
        """
        check_text("notice id", self.id)  # the pattern's $ would let a final newline through
        check_int(f"notice {self.id!r}: version", self.version, low=1)
        check_text(
            f"notice {self.id!r} version {self.version}: text",
            self.text,
            multiline=True,
            max_length=MAX_TEXT_LENGTH,
        )
        check_int(f"notice {self.id!r}: grace_days", self.grace_days, high=MAX_GRACE_DAYS)

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)

    @property
    def grace_until(self) -> datetime:
        return self.published_at + timedelta(days=self.grace_days)


@dataclass(frozen=True, slots=True)
class MaterialChange:
    """A material notice version that covers a purpose: consents older than it need renewing."""

    notice_id: str
    version: int
    published_at: datetime
    grace_until: datetime


def material_changes(notices: Iterable[Notice], purpose: str) -> tuple[MaterialChange, ...]:
    """Every material version that covers `purpose`, oldest first."""
    found = [
        MaterialChange(n.id, n.version, n.published_at, n.grace_until)
        for n in notices
        if n.material and purpose in n.purposes
    ]
    found.sort(key=lambda c: (c.published_at, c.notice_id, c.version))
    return tuple(found)
