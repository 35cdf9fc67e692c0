"""Purposes and the legal bases that govern them.

A purpose is what the data is processed for ("email marketing", "analytics"). Its legal basis
decides which actions a person can take on it and what the default decision is, so the basis is
part of the purpose's identity and never changes once events refer to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from consentry.domain.errors import ValidationError
from consentry.domain.inputs import check_int, check_text


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) bases that a consent platform has to tell apart."""

    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"


class OptOutCategory(StrEnum):
    """US state-law categories that are allowed until the person opts out (CPRA and peers)."""

    SALE = "sale"
    SHARING = "sharing"
    TARGETED_ADVERTISING = "targeted_advertising"


PURPOSE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_LIFETIME_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class Purpose:
    """One purpose of processing, as the tenant declared it."""

    id: str
    name: str
    legal_basis: LegalBasis
    description: str = ""
    required: bool = False
    lifetime_days: int | None = None
    opt_out_category: OptOutCategory | None = None

    def __post_init__(self) -> None:
        if not PURPOSE_ID_PATTERN.match(self.id):
            raise ValidationError(
                f"purpose id {self.id!r} must be 1-64 characters of lowercase letters, digits and"
                " _ . : - starting with a letter or digit"
            )
        if not self.name.strip():
            raise ValidationError(f"purpose {self.id!r} needs a non-empty name")
        if self.lifetime_days is not None and self.lifetime_days <= 0:
            raise ValidationError(f"purpose {self.id!r}: lifetime_days must be positive")
        if self.opt_out_category is not None and self.legal_basis is not LegalBasis.CONSENT:
            raise ValidationError(
                f"purpose {self.id!r}: an opt_out_category only applies to consent-based purposes"
            )

    def check_input(self) -> None:
        """The input rules (domain/inputs.py) a NEW purpose must meet; checked when it is
        written, not when it is read, so that a purpose stored under older rules stays readable.
        """
        check_text("purpose id", self.id)  # the pattern's $ would let a final newline through
        check_text(f"purpose {self.id!r}: name", self.name, max_length=MAX_NAME_LENGTH)
        check_text(
            f"purpose {self.id!r}: description",
            self.description,
            multiline=True,
            max_length=MAX_DESCRIPTION_LENGTH,
        )
        if self.lifetime_days is not None:
            check_int(
                f"purpose {self.id!r}: lifetime_days",
                self.lifetime_days,
                low=1,
                high=MAX_LIFETIME_DAYS,
            )
