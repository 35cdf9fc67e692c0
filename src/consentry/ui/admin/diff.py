"""What changed between two versions of a notice, word by word (notices are often one paragraph,
so a line diff would mark everything). Shown before a new version is published."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")  # spaces, words, each punctuation mark

Kind = Literal["same", "added", "removed"]


@dataclass(frozen=True, slots=True)
class Segment:
    kind: Kind
    text: str


@dataclass(frozen=True, slots=True)
class TextDiff:
    segments: tuple[Segment, ...]
    words_added: int
    words_removed: int

    @property
    def changed(self) -> bool:
        return bool(self.words_added or self.words_removed)


def _words(tokens: list[str]) -> int:
    return sum(1 for t in tokens if t[0].isalnum() or t[0] == "_")


def diff_text(old: str, new: str) -> TextDiff:
    """Segments of `new` and `old` in reading order: unchanged, removed, added."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    segments: list[Segment] = []
    added = removed = 0

    def push(kind: Kind, tokens: list[str]) -> None:
        if not tokens:
            return
        text = "".join(tokens)
        if segments and segments[-1].kind == kind:
            segments[-1] = Segment(kind, segments[-1].text + text)
        else:
            segments.append(Segment(kind, text))

    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            push("same", a[i1:i2])
            continue
        push("removed", a[i1:i2])
        push("added", b[j1:j2])
        removed += _words(a[i1:i2])
        added += _words(b[j1:j2])
    return TextDiff(tuple(segments), added, removed)
