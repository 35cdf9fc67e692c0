"""Docs that must match the code: every setting documented, every reason code explained."""

from __future__ import annotations

from pathlib import Path

from consentry.config import Settings
from consentry.domain.decide import Reason
from consentry.domain.events import Action

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [n for n in Settings.model_fields if f"`CONSENTRY_{n.upper()}`" not in text]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"


def test_every_reason_code_and_action_is_explained() -> None:
    text = (DOCS / "model.md").read_text()
    missing = [r.value for r in Reason if f"`{r.value}`" not in text]
    missing += [a.value for a in Action if f"`{a.value}`" not in text]
    assert not missing, f"explain these in docs/model.md: {missing}"
