"""The self-service pages' parts: words, language choice, colour contrast, forms, limits."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.fields import contrast_with_white
from hub.selfservice.words import LANGUAGES, WORDS, Words, language
from hub.settings import Settings
from hub.web.forms import FormExpired, FormForged, FormGuard
from hub.web.throttle import Throttle

LOCALES = Path(__file__).parents[2] / "hub" / "selfservice" / "locales"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_every_phrase_with_the_same_placeholders() -> None:
    english = WORDS["en"]
    for lang in LANGUAGES:
        table = json.loads((LOCALES / f"{lang}.json").read_text("utf-8"))
        assert table.keys() == english.keys(), lang
        for key, text in table.items():
            assert placeholders(text) == placeholders(english[key]), (lang, key)


@pytest.mark.parametrize(
    ("locale", "accept", "chosen"),
    [
        ("ru-RU", "en-US,en;q=0.9", "ru"),  # the contact's own language first
        (None, "de-DE,ru;q=0.8,en;q=0.5", "ru"),
        (None, "en;q=0.2, ru;q=0.9", "ru"),
        (None, "de, fr", "en"),
        ("de", None, "en"),
        (None, "ru;q=0", "en"),
        (None, "ru;q=bogus, en", "en"),
    ],
)
def test_the_language_is_the_contacts_then_the_browsers(
    locale: str | None, accept: str | None, chosen: str
) -> None:
    assert language(locale, accept) == chosen


def test_words_fill_in_their_values() -> None:
    assert Words("ru", company="Acme")("intro") == WORDS["ru"]["intro"].format(company="Acme")
    assert "Acme" in Words("ru", company="Acme")("intro")
    assert Words("xx", company="Acme")("save") == "Save my choices"


def test_brand_colours_must_reach_aa_contrast_with_white_text() -> None:
    assert contrast_with_white("#767676") == pytest.approx(4.54, abs=0.01)
    assert Settings(brand_color="#0B5A3C").brand_color == "#0b5a3c"
    with pytest.raises(ValidationError, match=r"4\.5:1"):
        Settings(brand_color="#ffcc00")
    with pytest.raises(ValidationError, match="#rrggbb"):
        Settings(brand_color="green")


def test_a_form_token_is_bound_to_its_page_and_its_site() -> None:
    guard = FormGuard(["key-0123456789abcdef"], "https://hub.example.com")
    token = guard.token("/preferences/abc")
    guard.check("/preferences/abc", token, None, "hub.example.com")
    guard.check("/preferences/abc", token, "https://hub.example.com", None)
    for path, given, origin in (
        ("/preferences/other", token, None),
        ("/preferences/abc", "", None),
        ("/preferences/abc", token + "x", None),
        ("/preferences/abc", token, "https://evil.example"),
    ):
        with pytest.raises(FormForged):
            guard.check(path, given, origin, "hub.example.com")
    rotated = FormGuard(
        ["new-key-0123456789abc", "key-0123456789abcdef"], "https://hub.example.com"
    )
    rotated.check("/preferences/abc", token, None, None)


def test_an_old_form_is_expired_not_forged(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = FormGuard(["key-0123456789abcdef"], "https://hub.example.com")
    token = guard.token("/preferences")
    monkeypatch.setattr("hub.web.forms.MAX_AGE", -1)
    with pytest.raises(FormExpired):
        guard.check("/preferences", token, None, None)


def test_the_throttle_counts_per_key_and_forgets_the_oldest() -> None:
    throttle = Throttle(2, 60, max_keys=3)
    assert [throttle.allow("a") for _ in range(3)] == [True, True, False]
    assert throttle.allow("b")
    for key in ("c", "d", "e"):
        throttle.allow(key)
    assert throttle.allow("a")  # forgotten once more than three keys were seen
