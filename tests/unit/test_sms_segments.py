"""SMS length: GSM-7 with its two-septet extension characters, UCS-2 as soon as one character
is outside the alphabet, and the 160/153 and 70/67 segment limits at their edges."""

from __future__ import annotations

import pytest

from hub.templates.sms import GSM_BASIC, GSM_EXTENSION, Encoding, measure


def test_an_empty_text_is_no_message() -> None:
    length = measure("")
    assert (length.encoding, length.units, length.segments) == (Encoding.GSM_7, 0, 0)


@pytest.mark.parametrize(
    ("size", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm_7_fits_160_alone_and_153_per_segment(size: int, segments: int) -> None:
    length = measure("a" * size)
    assert length.encoding is Encoding.GSM_7
    assert (length.characters, length.units, length.segments) == (size, size, segments)
    assert length.per_segment == (160 if segments == 1 else 153)


def test_extension_characters_count_two() -> None:
    length = measure("{€}")
    assert (length.encoding, length.characters, length.units) == (Encoding.GSM_7, 3, 6)
    assert measure("€" * 80).segments == 1  # 160 septets
    assert measure("€" * 80 + "a").segments == 2  # 161


def test_an_escape_pair_is_never_split_between_segments() -> None:
    # 152 plain septets, then "€" (2): it does not fit in the first 153, so it starts the
    # second segment; 152 + 2 + 152 = 306 septets would be 2 segments if it could be split.
    text = "a" * 152 + "€" + "a" * 152
    length = measure(text)
    assert length.units == 306
    assert length.segments == 3


def test_one_character_outside_gsm_makes_the_whole_text_ucs_2() -> None:
    length = measure("Hello, it\u2019s here")  # a curly apostrophe, the classic surprise
    assert length.encoding is Encoding.UCS_2
    assert length.outside_gsm == ("\u2019",)
    assert (length.units, length.segments, length.per_segment) == (16, 1, 70)


@pytest.mark.parametrize(("size", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3)])
def test_ucs_2_fits_70_alone_and_67_per_segment(size: int, segments: int) -> None:
    length = measure("ж" * size)
    assert length.encoding is Encoding.UCS_2
    assert (length.units, length.segments) == (size, segments)


def test_cyrillic_halves_what_fits() -> None:
    latin = measure("Your order has shipped and will arrive tomorrow. " * 3)
    russian = measure("Ваш заказ отправлен и прибудет завтра. " * 3)
    assert (latin.encoding, latin.segments) == (Encoding.GSM_7, 1)
    assert (russian.encoding, russian.segments) == (Encoding.UCS_2, 2)
    assert "".join(russian.outside_gsm[:3]) == "Ваш"


def test_extension_characters_count_one_in_ucs_2() -> None:
    assert measure("ж{").units == 2


def test_characters_beyond_the_bmp_are_two_units_and_never_split() -> None:
    assert measure("🙂").units == 2
    assert measure("🙂" * 35).segments == 1  # 70 units
    # 66 units, then an emoji (2) that would straddle the 67-unit boundary: it moves.
    length = measure("ж" * 66 + "🙂" + "ж" * 66)
    assert (length.units, length.segments) == (134, 3)


def test_the_alphabet_tables_hold_what_the_standard_lists() -> None:
    assert len(GSM_BASIC) == 127  # 128 code points, less the escape
    assert len(GSM_EXTENSION) == 10
    assert not GSM_BASIC & GSM_EXTENSION
    assert {"@", "£", "Δ", "ß", "\n", "\r", "Ç"} <= GSM_BASIC
    assert "`" not in GSM_BASIC
    assert "ç" not in GSM_BASIC
