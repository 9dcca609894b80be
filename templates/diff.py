"""What changed between two versions of a template, part by part: which parts, and the lines
of each (difflib), with the changed words of a changed line marked, for a page to show."""

from __future__ import annotations

import difflib
import enum
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

CONTEXT_LINES = 3  # unchanged lines kept around each change
WORD_DIFF_CHARS = 500  # longer lines are marked whole
_WORDS = re.compile(r"\w+|\s+|[^\w\s]")  # a changed line is compared word by word
PART_ORDER = ("email_subject", "email_html", "email_text", "sms_body", "voice_say", "webhook_json")


class Change(enum.StrEnum):
    SAME = "same"
    ADDED = "added"
    REMOVED = "removed"
    SKIPPED = "skipped"  # unchanged lines left out between two hunks


class PartChange(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class Line:
    change: Change
    old: int | None  # its number in the older text
    new: int | None  # in the newer
    pieces: tuple[tuple[bool, str], ...]  # (changed, text): the words that differ marked


@dataclass(frozen=True, slots=True)
class PartDiff:
    locale: str | None  # None: the template's own field (its description)
    part: str
    change: PartChange
    lines: tuple[Line, ...]

    @property
    def path(self) -> str:
        """ "description", "variants..sms_body" (the default), "variants.ru.email_html"."""
        return self.part if self.locale is None else f"variants.{self.locale}.{self.part}"


def texts(description: str | None, variants: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Every part of a template as text, by path; webhook JSON pretty-printed with its keys
    sorted (PostgreSQL's JSONB keeps no order, and the order means nothing to a receiver)."""
    found: dict[str, str] = {}
    if description:
        found["description"] = description
    for locale in sorted(variants):
        parts = variants[locale]
        for part in sorted(parts, key=_part_order):
            value = parts[part]
            if value is None:
                continue
            text = (
                value
                if isinstance(value, str)
                else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
            )
            found[f"variants.{locale}.{part}"] = text
    return found


def changed(
    before: tuple[str | None, Mapping[str, Mapping[str, Any]]],
    after: tuple[str | None, Mapping[str, Mapping[str, Any]]],
) -> list[str]:
    """The paths (as `texts` names them) that differ between (description, variants) pairs."""
    old, new = texts(*before), texts(*after)
    return [path for path in _union(old, new) if old.get(path) != new.get(path)]


def compare(
    before: tuple[str | None, Mapping[str, Mapping[str, Any]]],
    after: tuple[str | None, Mapping[str, Mapping[str, Any]]],
) -> list[PartDiff]:
    """Each part that differs, with its changed lines and a few around them."""
    old, new = texts(*before), texts(*after)
    diffs = []
    for path in _union(old, new):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        change = (
            PartChange.ADDED
            if a is None
            else PartChange.REMOVED
            if b is None
            else PartChange.CHANGED
        )
        locale, part = _split(path)
        lines = tuple(_lines((a or "").splitlines(), (b or "").splitlines()))
        diffs.append(PartDiff(locale, part, change, lines))
    return diffs


def _lines(a: list[str], b: list[str]) -> Iterator[Line]:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    # Read before grouping, which trims the opcodes' unchanged ends in place.
    ends = [(kind, i2 - i1) for kind, i1, i2, _, _ in matcher.get_opcodes()[-1:]]
    skipped_at_end = bool(ends) and ends[0][0] == "equal" and ends[0][1] > CONTEXT_LINES
    for number, group in enumerate(matcher.get_grouped_opcodes(CONTEXT_LINES)):
        if number or group[0][1] > 0 or group[0][3] > 0:
            yield Line(Change.SKIPPED, None, None, ())
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for offset in range(i2 - i1):
                    yield Line(
                        Change.SAME, i1 + offset + 1, j1 + offset + 1, ((False, a[i1 + offset]),)
                    )
                continue
            olds, news = a[i1:i2], b[j1:j2]
            for offset, text in enumerate(olds):
                other = news[offset] if tag == "replace" and offset < len(news) else None
                yield Line(Change.REMOVED, i1 + offset + 1, None, _pieces(text, other, old=True))
            for offset, text in enumerate(news):
                other = olds[offset] if tag == "replace" and offset < len(olds) else None
                yield Line(Change.ADDED, None, j1 + offset + 1, _pieces(text, other, old=False))
    if skipped_at_end:
        yield Line(Change.SKIPPED, None, None, ())


def _pieces(text: str, other: str | None, *, old: bool) -> tuple[tuple[bool, str], ...]:
    """`text` cut into unchanged and changed runs against the line it replaced (or became)."""
    if other is None or len(text) > WORD_DIFF_CHARS or len(other) > WORD_DIFF_CHARS:
        return ((True, text),)
    a, b = (_WORDS.findall(text), _WORDS.findall(other))
    if not old:
        a, b = b, a
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    pieces: list[tuple[bool, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        piece = "".join(a[i1:i2] if old else b[j1:j2])
        if not piece:
            continue
        if pieces and pieces[-1][0] == (tag != "equal"):  # one run, not a word at a time
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + piece)
        else:
            pieces.append((tag != "equal", piece))
    return tuple(pieces) or ((True, text),)


def _union(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return list(old) + [path for path in new if path not in old]


def _split(path: str) -> tuple[str | None, str]:
    if not path.startswith("variants."):
        return None, path
    locale, _, part = path.removeprefix("variants.").rpartition(".")
    return locale, part


def _part_order(part: str) -> int:
    return PART_ORDER.index(part) if part in PART_ORDER else len(PART_ORDER)
