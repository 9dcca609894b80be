"""What the pages say, in English and Russian, and how a page picks its language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

LANGUAGES: Final = ("en", "ru")

# One JSON file per language, so a translator needs no Python; every file has every key
# (a test holds them to it).
WORDS: Final[dict[str, dict[str, str]]] = {
    lang: json.loads((Path(__file__).parent / "locales" / f"{lang}.json").read_text("utf-8"))
    for lang in LANGUAGES
}


def language(locale: str | None, accept_language: str | None = None) -> str:
    """The contact's own language if we have it, else the browser's best, else English."""
    if locale and (base := locale.split("-")[0].lower()) in LANGUAGES:
        return base
    ranked: list[tuple[float, str]] = []
    for position, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        base = tag.split("-")[0].lower()
        if base in LANGUAGES and weight > 0:
            ranked.append((weight - position / 1000, base))
    return max(ranked)[1] if ranked else "en"


class Words:
    """`words("need_channel", topic="News")`: the phrase in the page's language."""

    def __init__(self, lang: str, **common: object) -> None:
        self.lang = lang if lang in LANGUAGES else "en"
        self._table = WORDS[self.lang]
        self._common = common

    def __call__(self, key: str, **values: object) -> str:
        return self._table[key].format(**(self._common | values))
