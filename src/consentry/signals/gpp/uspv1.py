"""Section 6, uspv1: the legacy CCPA string ("1YNN"), carried as-is rather than in base64."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from consentry.signals.gpp.encoding import GPPStringError

__all__ = ["UspV1"]

_USP_VALUE = re.compile(r"[YN-]")


@dataclass(frozen=True, slots=True, kw_only=True)
class UspV1:
    """Version, notice given, opted out of sale, LSPA covered; each flag ``Y``, ``N`` or ``-``
    (not applicable). Deprecated by the IAB in favour of usnat, still sent by many sites."""

    ID = 6
    NAME = "uspv1"

    Version: int = 1
    Notice: str = "-"
    OptOutSale: str = "-"
    LspaCovered: str = "-"

    def __post_init__(self) -> None:
        if self.Version != 1:
            raise GPPStringError(f"uspv1: unsupported version {self.Version}")
        for name in ("Notice", "OptOutSale", "LspaCovered"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _USP_VALUE.fullmatch(value):
                raise GPPStringError(f"uspv1: {name} must be 'Y', 'N' or '-', got {value!r}")

    def __str__(self) -> str:
        return f"{self.Version}{self.Notice}{self.OptOutSale}{self.LspaCovered}"

    @classmethod
    def parse(cls, text: str) -> UspV1:
        """Read the 4-character form carried as-is (not base64) in GPP section 6."""
        if len(text) != 4 or text[0] not in "0123456789":
            raise GPPStringError(f"uspv1: expected 4 characters like '1YNN', got {text!r}")
        return cls(
            Version=int(text[0]),
            Notice=text[1].upper(),
            OptOutSale=text[2].upper(),
            LspaCovered=text[3].upper(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``getSection`` view, with the specification's field names."""
        return {
            "Version": self.Version,
            "Notice": self.Notice,
            "OptOutSale": self.OptOutSale,
            "LspaCovered": self.LspaCovered,
        }
